import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { loadConfig, notifierConfigSchema } from '@app/config';
import { ALL_TOPICS, EventType, PayloadOf } from '@app/contracts';
import { ensureTopics, toRecord } from '@app/messaging';
import { RunningApp, startApp } from '@app/runtime';
import type { Producer } from 'kafkajs';
import { notifierApp } from '../apps/notifier/src/app';
import { signUp } from './support/accounts';
import { bootUsersApi } from './support/apps';
import { testKafka } from './support/broker';
import { ChildApp } from './support/child-app';
import { appEnv } from './support/env';
import { parseExposition, sampleOf } from './support/prometheus';
import { freePort } from './support/redis';
import { SseStream } from './support/sse';
import { waitFor } from './support/wait';

interface StreamedEvent {
  id: string;
  type: string;
  data: { postId?: string; videoId?: string; version?: number; title?: string };
}

const metricValue = (text: string, name: string, labels: Record<string, string> = {}) =>
  sampleOf(parseExposition(text), name, labels);

/** The notifier's Server-Sent Events against a real broker: fan-out to every replica, resume from the broker, slow clients. */
describe('notifier: live notifications over Server-Sent Events', () => {
  const apps: RunningApp[] = [];
  const children: ChildApp[] = [];
  const streams: SseStream[] = [];
  let producer: Producer;

  const bootNotifier = async (overrides: Record<string, string> = {}) => {
    const app = await startApp(notifierApp, loadConfig('notifier', notifierConfigSchema, appEnv(overrides)));
    apps.push(app);
    await waitFor('the notifier to join its group', () => app.server.consumerStatus().membership.state === 'joined');
    return app;
  };
  const open = async (url: string, headers: Record<string, string> = {}) => {
    const stream = await SseStream.open(`${url}/notifications/stream`, headers);
    streams.push(stream);
    return stream;
  };
  /** Publishes post events straight to the topic, as users-api's relay would, keyed by post id. */
  const publish = async <T extends EventType>(type: T, data: PayloadOf<T>, key: string) => {
    const record = toRecord(type, data, { key, source: 'e2e-tests' });
    await producer.send({ topic: record.topic, acks: -1, messages: [record] });
    return JSON.parse(record.value) as { id: string };
  };
  const postUpdated = (postId: string, version: number, body = 'text') =>
    publish(
      'post.updated.v1',
      {
        postId,
        authorId: randomUUID(),
        title: `v${version}`,
        body,
        version,
        createdAt: new Date().toISOString(),
        updatedAt: new Date().toISOString(),
        changed: ['title'],
      },
      postId,
    );
  const videoProcessed = (videoId: string) =>
    publish(
      'video.processed.v1',
      {
        videoId,
        metadata: { durationSeconds: 2, width: 320, height: 240, videoCodec: 'h264', bitRate: 1000, sizeBytes: 1000 },
        thumbnailKey: `videos/${videoId}/thumbnail.jpg`,
        previewKey: `videos/${videoId}/preview.mp4`,
        attempt: 1,
        processedBy: 'e2e',
      },
      videoId,
    );
  const postEvents = (stream: SseStream) => stream.named<StreamedEvent>('post.updated');

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    producer = testKafka().producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
  });

  afterAll(async () => {
    for (const stream of streams) stream.close();
    for (const child of children) await child.stop('SIGKILL');
    for (const app of apps) await app.app.close().catch(() => undefined);
    await producer.disconnect();
  });

  it('every replica streams every event to its own clients: a new post from users-api, and a processed video', async () => {
    const [a, b] = [await bootNotifier(), await bootNotifier()];
    const api = await bootUsersApi();
    apps.push(api);
    const [onA, onB] = [await open(a.url), await open(b.url)];
    for (const stream of [onA, onB]) await stream.waitFor('the ready event', (s) => s.named('ready').length === 1);

    const author = await signUp(api.url);
    const created = await fetch(`${api.url}/posts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...author.auth },
      body: JSON.stringify({ title: 'hello subscribers', body: 'first post' }),
    });
    const post = (await created.json()) as { id: string };
    const videoId = randomUUID();
    await videoProcessed(videoId);
    for (const stream of [onA, onB]) {
      await stream.waitFor(
        'post.created and video.processed',
        (s) =>
          s.named<StreamedEvent>('post.created').some((e) => e.data.postId === post.id) &&
          s.named<StreamedEvent>('video.processed').some((e) => e.data.videoId === videoId),
      );
      const frame = stream.events.find((e) => e.event === 'post.created')!;
      expect(frame.id).toMatch(/^posts:\d+(,\d+)*;video-processed:\d+(,\d+)*;emails-sent:\d+(,\d+)*$/);
      expect(JSON.parse(frame.data)).toMatchObject({ type: 'post.created.v1', data: { title: 'hello subscribers' } });
    }

    // A filtered stream gets only what it asked for; an unknown type is refused.
    const filtered = await SseStream.open(`${a.url}/notifications/stream?types=video.processed`);
    streams.push(filtered);
    const other = randomUUID();
    await postUpdated(other, 2);
    await publish('video.failed.v1', { videoId: other, reason: 'not a video', permanent: true, attempt: 1 }, other);
    const lastVideo = randomUUID();
    await videoProcessed(lastVideo);
    await filtered.waitFor('the processed video', (s) =>
      s.named<StreamedEvent>('video.processed').some((e) => e.data.videoId === lastVideo),
    );
    expect(filtered.events.map((e) => e.event).filter((n) => n !== 'ready')).toEqual(['video.processed']);
    const bad = await SseStream.open(`${a.url}/notifications/stream?types=post.liked`);
    expect(bad.status).toBe(400);
    expect(bad.body).toContain("unknown 'post.liked'");
    expect(JSON.parse(bad.body)).toMatchObject({ code: 'VALIDATION.FAILED', errors: [{ field: 'types' }] });

    // A page opened now sees what happened just before: the last events of each partition, then the live feed.
    const late = await SseStream.open(`${a.url}/notifications/stream?types=video.processed&recent=5`);
    streams.push(late);
    await late.waitFor('the processed video from before it opened', (s) =>
      s.named<StreamedEvent>('video.processed').some((e) => e.data.videoId === lastVideo),
    );
    const tooMany = await SseStream.open(`${a.url}/notifications/stream?recent=1000`);
    expect(tooMany.status).toBe(400);
    expect(JSON.parse(tooMany.body)).toMatchObject({ code: 'VALIDATION.FAILED', errors: [{ field: 'recent' }] });
  });

  it('a client whose replica was killed resumes on another with Last-Event-ID: what it missed, once, in order', async () => {
    const port = await freePort();
    const doomed = new ChildApp('notifier', `notifier-doomed-${randomUUID().slice(0, 6)}`, { PORT: String(port) });
    children.push(doomed);
    await doomed.start('listening on');
    const other = await bootNotifier();
    const first = await open(`http://127.0.0.1:${port}`);
    await first.waitFor('the ready event', (s) => s.named('ready').length === 1);
    // The child's consumer joins in the background: wait until it streams before counting on it.
    const [x, y] = [randomUUID(), randomUUID()];
    await waitFor('the doomed replica to stream', async () => {
      await postUpdated(x, 1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      return postEvents(first).length > 0;
    });
    await postUpdated(x, 2);
    await first.waitFor('version 2 of x', (s) => postEvents(s).some((e) => e.data.version === 2));
    const seenBefore = postEvents(first).map((e) => e.id);
    const lastEventId = first.lastEventId!;

    doomed.signal('SIGKILL');
    await first.waitFor('the stream to end', (s) => s.ended).catch(() => undefined);
    first.close();
    // Missed while no replica served the client.
    const missed: string[] = [];
    for (let v = 3; v <= 6; v++) missed.push((await postUpdated(x, v)).id);
    for (let v = 1; v <= 3; v++) missed.push((await postUpdated(y, v)).id);

    const resumed = await open(other.url, { 'Last-Event-ID': lastEventId });
    await resumed.waitFor('every missed event', (s) => missed.every((id) => postEvents(s).some((e) => e.id === id)));
    expect(resumed.named<{ resumed: boolean; replaying: number }>('ready')[0]).toMatchObject({ resumed: true });
    const ids = postEvents(resumed).map((e) => e.id);
    // Exactly the missed ones, each once, nothing seen before.
    expect(ids.filter((id) => seenBefore.includes(id))).toEqual([]);
    expect([...ids].sort()).toEqual([...missed].sort());
    const versionsOf = (post: string) =>
      postEvents(resumed)
        .filter((e) => e.data.postId === post)
        .map((e) => e.data.version);
    expect(versionsOf(x)).toEqual([3, 4, 5, 6]);
    expect(versionsOf(y)).toEqual([1, 2, 3]);

    // Then live, still once each.
    const live = await postUpdated(y, 4);
    await resumed.waitFor('the live event', (s) => postEvents(s).some((e) => e.id === live.id));
    expect(postEvents(resumed).filter((e) => e.id === live.id)).toHaveLength(1);

    // Too far back: told so, and streamed from now.
    const bounded = await bootNotifier({ NOTIFIER_RESUME_MAX_EVENTS: '3' });
    const tooFar = await open(bounded.url, { 'Last-Event-ID': lastEventId });
    await tooFar.waitFor('the resync event', (s) => s.named('resync').length === 1);
    expect(tooFar.named<{ limit: number; missed: number }>('resync')[0]).toMatchObject({ limit: 3 });
    expect(postEvents(tooFar)).toEqual([]);
    const garbage = await SseStream.open(`${other.url}/notifications/stream`, { 'Last-Event-ID': 'posts:1;evil:2' });
    expect(garbage.status).toBe(400);
  });

  it('a client that never reads is dropped at its queue bound; the others get all 1,000 events', async () => {
    const queueMax = 300;
    const notifier = await bootNotifier({ NOTIFIER_CLIENT_QUEUE_MAX: String(queueMax) });
    const reader = await open(notifier.url);
    await reader.waitFor('the ready event', (s) => s.named('ready').length === 1);
    // Asks for the stream, then never reads a byte: the socket's buffers fill, then the client's queue.
    const url = new URL(notifier.url);
    const stalled = connect(Number(url.port), url.hostname);
    stalled.on('error', () => undefined);
    stalled.pause();
    await new Promise<void>((resolve) => stalled.once('connect', resolve));
    stalled.write(`GET /notifications/stream HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`);
    const metrics = async () => (await fetch(`${notifier.url}/metrics`)).text();
    await waitFor(
      'both streams to be open',
      async () => metricValue(await metrics(), 'notifier_sse_connections') === 2,
    );

    const postId = randomUUID();
    const body = 'x'.repeat(8000);
    let maxQueued = 0;
    const sampler = setInterval(() => {
      void metrics().then(
        (text) => (maxQueued = Math.max(maxQueued, metricValue(text, 'notifier_sse_queued_events') ?? 0)),
      );
    }, 100);
    try {
      const messages = Array.from({ length: 1000 }, (_, i) =>
        toRecord(
          'post.updated.v1',
          {
            postId,
            authorId: postId,
            title: `v${i + 1}`,
            body,
            version: i + 1,
            createdAt: new Date().toISOString(),
            updatedAt: new Date().toISOString(),
            changed: ['body'],
          },
          { key: postId, source: 'e2e-tests' },
        ),
      );
      for (let i = 0; i < messages.length; i += 100) {
        await producer.send({ topic: 'posts', acks: -1, messages: messages.slice(i, i + 100) });
      }
      await reader.waitFor(
        'all 1,000 events at the reading client',
        (s) => postEvents(s).filter((e) => e.data.postId === postId).length === 1000,
        60_000,
      );
    } finally {
      clearInterval(sampler);
    }
    const text = await metrics();
    expect(metricValue(text, 'notifier_sse_dropped_clients_total', { reason: 'overflow' })).toBe(1);
    expect(metricValue(text, 'notifier_sse_connections')).toBe(1);
    // Bounded: never more than one client's queue (plus the one that tipped it over) waited in memory.
    expect(maxQueued).toBeLessThanOrEqual(queueMax + 1);
    const versions = postEvents(reader)
      .filter((e) => e.data.postId === postId)
      .map((e) => e.data.version);
    expect(versions).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    stalled.destroy();
  });
});
