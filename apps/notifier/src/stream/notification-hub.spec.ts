import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import type { NotifierConfig } from '@app/config';
import { parseEvent } from '@app/contracts';
import { HistoryMessage, PartitionBounds, Positions, toRecord, TopicHistory } from '@app/messaging';
import { LivePositions } from './live-positions';
import { NotificationHub } from './notification-hub';
import { PUBLIC_STREAM, userStream } from './positions';
import { RecentEvents } from './recent-events';
import { StreamKeys } from './stream-keys';

const POST = randomUUID();
const value = (version: number, postId = POST) =>
  toRecord(
    'post.updated.v1',
    {
      postId,
      authorId: randomUUID(),
      title: `v${version}`,
      body: 'text',
      version,
      createdAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
      changed: ['title'],
    },
    { key: postId, source: 'unit' },
  ).value;

/** A topic held in memory: posts[0] holds `log` from offset `low` on. */
function history(log: Map<number, string>, low = 0) {
  const high = () => Math.max(low, ...[...log.keys()].map((o) => o + 1));
  const bounds = (): Record<string, PartitionBounds[]> => ({
    posts: [{ low, high: high() }],
    'video-processed': [{ low: 0, high: 0 }],
    'emails-sent': [{ low: 0, high: 0 }],
  });
  const read = (from: Positions, to: Positions, onMessage: (m: HistoryMessage) => void) => {
    for (let offset = Math.max(low, from.posts?.[0] ?? 0); offset < (to.posts?.[0] ?? 0); offset++) {
      const text = log.get(offset);
      if (text !== undefined)
        onMessage({ topic: 'posts', partition: 0, offset, message: { value: Buffer.from(text) } } as HistoryMessage);
    }
    return Promise.resolve(0);
  };
  return { bounds: () => Promise.resolve(bounds()), read } as unknown as TopicHistory;
}

function fakeStream() {
  const frames: { id?: string; event: string; data: string }[] = [];
  const response = Object.assign(new EventEmitter(), {
    writableNeedDrain: false,
    status: () => response,
    setHeader: () => response,
    flushHeaders: () => undefined,
    end: () => undefined,
    destroy: () => undefined,
    write: (text: string) => {
      const lines = Object.fromEntries(
        text
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
      );
      if (lines.event) frames.push({ id: lines.id, event: lines.event, data: lines.data });
      return true;
    },
  });
  return { request: new EventEmitter() as unknown as Request, response: response as unknown as Response, frames };
}

const keys = new StreamKeys(Buffer.from('unit-test-secret-of-thirty-two-chars'));

const config = {
  NOTIFIER_HEARTBEAT_MS: 60_000,
  NOTIFIER_CLIENT_QUEUE_MAX: 100,
  NOTIFIER_RESUME_MAX_EVENTS: 1000,
  NOTIFIER_MAX_CLIENTS: 10,
} as NotifierConfig;

async function hubOver(log: Map<number, string>, low = 0) {
  const topic = history(log, low);
  const live = new LivePositions(topic);
  await live.ready();
  const hub = new NotificationHub(config, topic, live, keys);
  const client = fakeStream();
  await hub.open(client.request, client.response, { stream: PUBLIC_STREAM });
  return { hub, live, frames: client.frames };
}

const publish = (hub: NotificationHub, text: string, offset: number) =>
  hub.publish(parseEvent(text), { topic: 'posts', partition: 0, offset });
const versions = (frames: { event: string; data: string }[]) =>
  frames
    .filter((f) => f.event === 'post.updated')
    .map((f) => (JSON.parse(f.data) as { data: { version: number } }).data.version);

describe('NotificationHub: the live feed has no gap and no repeat', () => {
  it('starts every join where the feed stands: the ends at boot, then past each delivered event', async () => {
    const log = new Map([
      [0, value(1)],
      [1, value(2)],
    ]);
    const { hub, live } = await hubOver(log);
    expect(live.startOffset('posts', 0)).toBe('2');
    expect(live.startOffset('posts', 5)).toBe('0');
    expect(live.startOffset('elsewhere', 0)).toBeUndefined();
    log.set(2, value(3));
    await publish(hub, log.get(2)!, 2);
    expect(live.startOffset('posts', 0)).toBe('3');
    hub.onModuleDestroy();
  });

  it('fills a jump past its position from the topic, in order, before the event', async () => {
    const log = new Map([[0, value(1)]]);
    const { hub, frames } = await hubOver(log);
    for (const offset of [1, 2, 3]) log.set(offset, value(offset + 1));
    await publish(hub, log.get(3)!, 3);
    expect(versions(frames)).toEqual([2, 3, 4]);
    // A re-fetch of what the feed delivered already goes nowhere.
    await publish(hub, log.get(2)!, 2);
    expect(versions(frames)).toEqual([2, 3, 4]);
    hub.onModuleDestroy();
  });

  it('tells every client to resync when the topic no longer holds the hole', async () => {
    const log = new Map([[0, value(1)]]);
    const { hub, frames } = await hubOver(log);
    for (const offset of [1, 2, 3]) log.set(offset, value(offset + 1));
    // Retention removed offsets 1 and 2 before the feed reached them.
    log.delete(1);
    log.delete(2);
    await publish(hub, log.get(3)!, 3);
    expect(frames.map((f) => f.event)).toEqual(['ready', 'resync', 'post.updated']);
    hub.onModuleDestroy();
  });

  it('does not send an event id again at another offset', async () => {
    const log = new Map([[0, value(1)]]);
    const { hub, frames } = await hubOver(log);
    const twice = value(2);
    log.set(1, twice);
    log.set(2, twice);
    log.set(3, value(3));
    for (const offset of [1, 2, 3]) await publish(hub, log.get(offset)!, offset);
    expect(versions(frames)).toEqual([2, 3]);
    hub.onModuleDestroy();
  });
});

describe('NotificationHub: a stream with the recent events first', () => {
  it('replays the last N events of a partition, then goes on live, and a resume wins over it', async () => {
    const log = new Map([0, 1, 2, 3, 4].map((offset) => [offset, value(offset + 1)] as [number, string]));
    const { hub } = await hubOver(log);
    const client = fakeStream();
    await hub.open(client.request, client.response, { stream: PUBLIC_STREAM, recent: 2 });
    expect(versions(client.frames)).toEqual([4, 5]);
    const ready = JSON.parse(client.frames.find((f) => f.event === 'ready')!.data) as Record<string, unknown>;
    expect(ready).toMatchObject({ resumed: false, replaying: 2 });
    log.set(5, value(6));
    await publish(hub, log.get(5)!, 5);
    expect(versions(client.frames)).toEqual([4, 5, 6]);

    const resumed = fakeStream();
    await hub.open(resumed.request, resumed.response, {
      stream: PUBLIC_STREAM,
      recent: 2,
      lastEventId: client.frames.at(-1)!.id,
    });
    expect(versions(resumed.frames)).toEqual([]);
    hub.onModuleDestroy();
  });

  it('replays no further back than the topic holds', async () => {
    const log = new Map([[3, value(1)]]);
    const { hub } = await hubOver(log, 3);
    const client = fakeStream();
    await hub.open(client.request, client.response, { stream: PUBLIC_STREAM, recent: 50 });
    expect(versions(client.frames)).toEqual([1]);
    hub.onModuleDestroy();
  });
});

describe('NotificationHub: who sees an event', () => {
  const video = (ownerId?: string) =>
    parseEvent(
      toRecord(
        'video.failed.v1',
        { videoId: randomUUID(), reason: 'not a video', permanent: true, attempt: 1, ...(ownerId ? { ownerId } : {}) },
        { key: 'v', source: 'unit' },
      ).value,
    );

  it("sends a video event only on its owner's stream, one without an owner to no one, and posts only in public", async () => {
    const { hub, frames: publicFrames } = await hubOver(new Map());
    const [alice, bob] = [randomUUID(), randomUUID()];
    const [onAlice, onBob] = [fakeStream(), fakeStream()];
    await hub.open(onAlice.request, onAlice.response, { stream: userStream(alice) });
    await hub.open(onBob.request, onBob.response, { stream: userStream(bob) });
    await hub.publish(video(alice), { topic: 'video-processed', partition: 0, offset: 0 });
    await hub.publish(video(), { topic: 'video-processed', partition: 0, offset: 1 });
    await publish(hub, value(1), 0);
    const named = (frames: { event: string }[]) => frames.map((f) => f.event).filter((e) => e !== 'ready');
    expect(named(onAlice.frames)).toEqual(['video.failed']);
    expect(named(onBob.frames)).toEqual([]);
    expect(named(publicFrames)).toEqual(['post.updated']);
    // Alice's ids cover her stream's topics only, signed for her stream: Bob's stream refuses them.
    const id = onAlice.frames.at(-1)!.id!;
    expect(id).toMatch(/^video-processed:1;emails-sent:0~[A-Za-z0-9_-]{22}$/);
    await expect(
      hub.open(onBob.request, fakeStream().response, { stream: userStream(bob), lastEventId: id }),
    ).rejects.toMatchObject({ status: 400, code: 'NOTIFIER.BAD_LAST_EVENT_ID' });
    hub.onModuleDestroy();
  });
});

describe('RecentEvents', () => {
  it('forgets the least recently seen ids first', () => {
    const recent = new RecentEvents(2);
    const at = (offset: number) => ({ topic: 'posts', partition: 0, offset });
    recent.record('a', at(0));
    recent.record('b', at(1));
    recent.record('a', at(5));
    recent.record('c', at(2));
    expect(recent.size).toBe(2);
    expect(recent.passedAnother('a', at(5), { posts: [6] })).toBe(true);
    expect(recent.passedAnother('b', at(9), { posts: [10] })).toBe(false);
    // Not passed yet: the stream stands before the earlier copy.
    expect(recent.passedAnother('a', at(5), { posts: [0] })).toBe(false);
  });
});
