import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { ALL_TOPICS } from '@app/contracts';
import { ensureTopics, EventRecord, toRecord } from '@app/messaging';
import type { Admin, Producer } from 'kafkajs';
import { decodePositions, PUBLIC_TOPICS } from '../apps/notifier/src/stream/positions';
import { testKafka } from './support/broker';
import { ChildApp } from './support/child-app';
import { parseExposition, sampleOf } from './support/prometheus';
import { freePort } from './support/redis';
import { SseStream } from './support/sse';
import { waitFor } from './support/wait';

interface Written {
  id: string;
  postId: string;
  version: number;
  partition: number;
  offset: number;
}

/** The positions an event id carries (before its signature). */
const positionsOf = (id: string) => decodePositions(id.slice(0, id.lastIndexOf('~')), PUBLIC_TOPICS);

interface StreamedPost {
  id: string;
  data: { postId: string; version: number };
}

/**
 * The notifier's live feed across (re)joins of its per-instance group, with a real notifier process: frozen past its
 * session, killed and restarted while events are written, and fed the same event twice.
 */
describe('notifier: no gaps and no repeats across rejoins', () => {
  const children: ChildApp[] = [];
  const streams: SseStream[] = [];
  let producer: Producer;
  let admin: Admin;

  const record = (postId: string, version: number): EventRecord =>
    toRecord(
      'post.updated.v1',
      {
        postId,
        authorId: postId,
        title: `v${version}`,
        body: 'text',
        version,
        createdAt: new Date().toISOString(),
        updatedAt: new Date().toISOString(),
        changed: ['title'],
      },
      { key: postId, source: 'e2e-tests' },
    );
  /** Writes a record to the posts topic (on the partition given, else by its key) and says where it landed. */
  const send = async (r: EventRecord, partition?: number): Promise<Written> => {
    const [meta] = await producer.send({ topic: r.topic, acks: -1, messages: [{ ...r, partition }] });
    const { id, data } = JSON.parse(r.value) as { id: string; data: { postId: string; version: number } };
    return { id, ...data, partition: meta.partition, offset: Number(meta.baseOffset) };
  };
  const post = (postId: string, version: number, partition?: number) => send(record(postId, version), partition);
  const posts = (stream: SseStream) => stream.named<StreamedPost>('post.updated');

  const bootChild = async (label: string, overrides: Record<string, string> = {}) => {
    const port = overrides.PORT ?? String(await freePort());
    const child = new ChildApp('notifier', `notifier-${label}-${randomUUID().slice(0, 6)}`, {
      PORT: port,
      ...overrides,
    });
    children.push(child);
    await child.start('listening on');
    return { child, url: `http://127.0.0.1:${port}` };
  };
  const open = async (url: string, headers: Record<string, string> = {}) => {
    const stream = await SseStream.open(`${url}/notifications/stream`, headers);
    streams.push(stream);
    return stream;
  };
  /** Waits until the stream carries a probe event: the replica's consumer has joined and fetches. */
  const streaming = async (stream: SseStream, partition = 0) => {
    const probe = randomUUID();
    await post(probe, 1, partition);
    await stream.waitFor('the probe event', (s) => posts(s).some((e) => e.data.postId === probe));
  };
  /** What a stream that stood at `position` should get of `written`: every later event, in order, once. */
  const expectEveryEventAfter = (stream: SseStream, position: string, written: Written[]) => {
    const from = positionsOf(position).posts ?? [];
    const due = written.filter((w) => w.offset >= (from[w.partition] ?? 0)).map((w) => w.id);
    const got = posts(stream).map((e) => e.id);
    expect(due.filter((id) => !got.includes(id))).toEqual([]);
    expect(got.filter((id, i) => got.indexOf(id) !== i)).toEqual([]);
    for (const postId of new Set(written.map((w) => w.postId))) {
      const versions = posts(stream)
        .filter((e) => e.data.postId === postId)
        .map((e) => e.data.version);
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
    }
    return due.length;
  };

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    producer = testKafka().producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    admin = testKafka().admin();
    await admin.connect();
  });

  afterAll(async () => {
    for (const stream of streams) stream.close();
    for (const child of children) await child.stop('SIGKILL');
    await admin.disconnect();
    await producer.disconnect();
  });

  it('frozen (SIGSTOP) past its session while posts are written: a connected client gets every one, in order, once', async () => {
    const { child, url } = await bootChild('frozen', {
      CONSUMER_SESSION_TIMEOUT_MS: '6000',
      CONSUMER_HEARTBEAT_INTERVAL_MS: '1000',
    });
    const stream = await open(url);
    await stream.waitFor('the ready event', (s) => s.named('ready').length === 1);
    await streaming(stream, 0);
    const groupPrefix = `notifier.${hostname()}-${child.pid}-`;
    const groupId = (await admin.listGroups()).groups.find((g) => g.groupId.startsWith(groupPrefix))?.groupId;
    expect(groupId).toBeDefined();

    const written: Written[] = [];
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    child.signal('SIGSTOP');
    try {
      // Two versions of one post per partition, while the process is frozen with its sockets open.
      for (let version = 1; version <= 2; version++) {
        for (const [partition, postId] of ids.entries()) written.push(await post(postId, version, partition));
      }
      // The broker drops the frozen member: on thaw it must join again (UNKNOWN_MEMBER_ID).
      await waitFor(
        'the broker to drop the frozen member',
        async () => (await admin.describeGroups([groupId!])).groups[0].members.length === 0,
        { timeoutMs: 20_000, intervalMs: 250 },
      );
    } finally {
      child.signal('SIGCONT');
    }
    await stream
      .waitFor('all 6 posts written during the freeze', (s) =>
        written.every((w) => posts(s).some((e) => e.id === w.id)),
      )
      .catch(() => undefined);
    expect(written.filter((w) => !posts(stream).some((e) => e.id === w.id))).toEqual([]);
    expect(expectEveryEventAfter(stream, stream.events[0].id!, written)).toBe(6);
  }, 90_000);

  it('restarted while posts are written: a client from boot and a resuming one get every event after their position', async () => {
    const port = String(await freePort());
    const { child: first, url } = await bootChild('first', { PORT: port });
    const before = await open(url);
    await before.waitFor('the ready event', (s) => s.named('ready').length === 1);
    for (const partition of [0, 1, 2]) await streaming(before, partition);
    const lastEventId = before.lastEventId!;
    first.signal('SIGKILL');
    await waitFor('the first notifier to die', () => !first.running);

    const written: Written[] = [];
    let writing = true;
    const writer = (async () => {
      for (let n = 0; writing; n++) {
        written.push(await post(randomUUID(), 1, n % 3));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      const second = new ChildApp('notifier', `notifier-second-${randomUUID().slice(0, 6)}`, { PORT: port });
      children.push(second);
      const joined = second.start('listening on');
      // Streams are served before the consumer joins: connect the moment the port answers.
      const fresh = await waitFor(
        'the restarted notifier to serve a stream',
        async () => {
          const stream = await SseStream.open(`${url}/notifications/stream`);
          streams.push(stream);
          return stream.status === 200 ? stream : false;
        },
        { intervalMs: 20 },
      );
      const resumed = await open(url, { 'Last-Event-ID': lastEventId });
      await joined;
      const atJoin = written.length;
      await waitFor('posts written after the join', () => written.length >= atJoin + 20);
      writing = false;
      await writer;

      await fresh.waitFor('the ready event', (s) => s.named('ready').length === 1);
      const start = fresh.events.find((e) => e.event === 'ready')!.id!;
      const all = (s: SseStream, from: string) => {
        const at = positionsOf(from).posts ?? [];
        return written
          .filter((w) => w.offset >= (at[w.partition] ?? 0))
          .every((w) => posts(s).some((e) => e.id === w.id));
      };
      await fresh.waitFor('every post after its start', (s) => all(s, start)).catch(() => undefined);
      await resumed.waitFor('every post after its last id', (s) => all(s, lastEventId)).catch(() => undefined);
      expect(expectEveryEventAfter(fresh, start, written)).toBeGreaterThan(20);
      expect(expectEveryEventAfter(resumed, lastEventId, written)).toBe(written.length);
    } finally {
      writing = false;
      await writer;
    }
  }, 90_000);

  it('the same event id twice on the topic (a relay re-send) reaches a live client and a resuming one once', async () => {
    const { url } = await bootChild('repeats');
    const live = await open(url);
    await live.waitFor('the ready event', (s) => s.named('ready').length === 1);
    await streaming(live);
    const position = live.lastEventId!;

    const postId = randomUUID();
    const twice = record(postId, 1);
    const copies = [await send(twice), await send(twice)];
    expect(copies[1].offset).toBeGreaterThan(copies[0].offset);
    const after = await post(postId, 2);
    await live.waitFor('the event after the copies', (s) => posts(s).some((e) => e.id === after.id));
    const resumed = await open(url, { 'Last-Event-ID': position });
    await resumed.waitFor('the event after the copies', (s) => posts(s).some((e) => e.id === after.id));

    for (const stream of [live, resumed]) {
      expect(
        posts(stream)
          .filter((e) => e.data.postId === postId)
          .map((e) => [e.id, e.data.version]),
      ).toEqual([
        [copies[0].id, 1],
        [after.id, 2],
      ]);
    }
    const metrics = parseExposition(await (await fetch(`${url}/metrics`)).text());
    expect(sampleOf(metrics, 'notifier_sse_repeats_dropped_total')).toBe(2);
  });
});
