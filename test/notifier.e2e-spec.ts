import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { loadConfig, notifierConfigSchema } from '@app/config';
import { ALL_TOPICS, EventType, PayloadOf } from '@app/contracts';
import { ensureTopics, toRecord } from '@app/messaging';
import { RunningApp, startApp } from '@app/runtime';
import type { Producer } from 'kafkajs';
import { notifierApp } from '../apps/notifier/src/app';
import { Account, signUp } from './support/accounts';
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
  data: { postId?: string; videoId?: string; version?: number; title?: string; ownerId?: string; userId?: string };
}

/** A signed event id: the positions, then `~` and the MAC. */
const SIGNED_ID = /^posts:\d+(,\d+)*~[A-Za-z0-9_-]{22}$/;
const PRIVATE_NAMES = ['video.progress', 'video.processed', 'video.failed', 'email.sent'];

const metricValue = (text: string, name: string, labels: Record<string, string> = {}) =>
  sampleOf(parseExposition(text), name, labels);

/** The notifier's Server-Sent Events against a real broker: fan-out to every replica, resume from the broker, slow clients. */
describe('notifier: live notifications over Server-Sent Events', () => {
  const apps: RunningApp[] = [];
  const children: ChildApp[] = [];
  const streams: SseStream[] = [];
  let producer: Producer;

  let api: RunningApp;
  const bootNotifier = async (overrides: Record<string, string> = {}) => {
    const env = appEnv({ AUTH_JWKS_URL: `${api.url}/.well-known/jwks.json`, ...overrides });
    const app = await startApp(notifierApp, loadConfig('notifier', notifierConfigSchema, env));
    apps.push(app);
    await waitFor('the notifier to join its group', () => app.server.consumerStatus().membership.state === 'joined');
    return app;
  };
  const open = async (url: string, headers: Record<string, string> = {}) => {
    const stream = await SseStream.open(`${url}/notifications/stream`, headers);
    streams.push(stream);
    return stream;
  };
  /** A user's own stream, signed in by the cookie (`{ cookie }`) or a Bearer header (`account.auth`). */
  const openMine = async (url: string, headers: Record<string, string>, query = '') => {
    const stream = await SseStream.open(`${url}/notifications/me/stream${query}`, headers);
    streams.push(stream);
    return stream;
  };
  /** `POST /notifications/session` as the console's page does: the Set-Cookie it answers, and the Cookie header. */
  const session = async (url: string, account: Account) => {
    const response = await fetch(`${url}/notifications/session`, { method: 'POST', headers: account.auth });
    expect(response.status).toBe(204);
    const [setCookie] = response.headers.getSetCookie();
    return { setCookie, headers: { cookie: setCookie.split(';')[0] } };
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
  const videoProcessed = (videoId: string, ownerId?: string) =>
    publish(
      'video.processed.v1',
      {
        videoId,
        metadata: { durationSeconds: 2, width: 320, height: 240, videoCodec: 'h264', bitRate: 1000, sizeBytes: 1000 },
        thumbnailKey: `videos/${videoId}/thumbnail.jpg`,
        previewKey: `videos/${videoId}/preview.mp4`,
        attempt: 1,
        processedBy: 'e2e',
        ...(ownerId ? { ownerId } : {}),
      },
      videoId,
    );
  const videoFailed = (videoId: string, ownerId?: string) =>
    publish(
      'video.failed.v1',
      { videoId, reason: 'not a video', permanent: true, attempt: 1, ...(ownerId ? { ownerId } : {}) },
      videoId,
    );
  const emailSent = (userId: string) =>
    publish(
      'email.sent.v1',
      { userId, template: 'welcome', messageId: `<${randomUUID()}@e2e>`, requestId: randomUUID() },
      userId,
    );
  const privateEvents = (stream: SseStream) =>
    stream.events.filter((e) => PRIVATE_NAMES.includes(e.event)).map((e) => JSON.parse(e.data) as StreamedEvent);
  const postEvents = (stream: SseStream) => stream.named<StreamedEvent>('post.updated');

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    producer = testKafka().producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    // The notifier verifies access tokens against this users-api's keys (JWKS).
    api = await bootUsersApi();
    apps.push(api);
  });

  afterAll(async () => {
    for (const stream of streams) stream.close();
    for (const child of children) await child.stop('SIGKILL');
    for (const app of apps) await app.app.close().catch(() => undefined);
    await producer.disconnect();
  });

  it('every replica streams every post event to its own clients, and the public stream carries no private event', async () => {
    const [a, b] = [await bootNotifier(), await bootNotifier()];
    const [onA, onB] = [await open(a.url), await open(b.url)];
    const owner = await signUp(api.url);
    // The owner's own stream on each replica: once it has the private events, the public streams were offered them.
    const [mineOnA, mineOnB] = [await openMine(a.url, owner.auth), await openMine(b.url, owner.auth)];
    for (const stream of [onA, onB, mineOnA, mineOnB])
      await stream.waitFor('the ready event', (s) => s.named('ready').length === 1);

    const created = await fetch(`${api.url}/posts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...owner.auth },
      body: JSON.stringify({ title: 'hello subscribers', body: 'first post' }),
    });
    const post = (await created.json()) as { id: string };
    const videoId = randomUUID();
    await videoProcessed(videoId, owner.userId);
    await videoProcessed(randomUUID());
    await emailSent(owner.userId);
    for (const [stream, mine] of [
      [onA, mineOnA],
      [onB, mineOnB],
    ]) {
      await stream.waitFor('post.created', (s) =>
        s.named<StreamedEvent>('post.created').some((e) => e.data.postId === post.id),
      );
      await mine.waitFor(
        'the video and the email',
        (s) => s.named('video.processed').length === 1 && s.named('email.sent').length === 1,
      );
      const frame = stream.events.find((e) => e.event === 'post.created')!;
      expect(frame.id).toMatch(SIGNED_ID);
      expect(JSON.parse(frame.data)).toMatchObject({ type: 'post.created.v1', data: { title: 'hello subscribers' } });
      expect(privateEvents(stream)).toEqual([]);
      expect(stream.named('ready')[0]).toMatchObject({ resumed: false });
    }

    // A filtered stream gets only what it asked for; a private or unknown type is refused, naming it.
    const filtered = await SseStream.open(`${a.url}/notifications/stream?types=post.updated`);
    streams.push(filtered);
    const other = randomUUID();
    await publish(
      'post.deleted.v1',
      { postId: other, authorId: randomUUID(), version: 1, deletedAt: new Date().toISOString() },
      other,
    );
    await postUpdated(other, 2);
    await filtered.waitFor('the updated post', (s) => postEvents(s).some((e) => e.data.postId === other));
    expect(filtered.events.map((e) => e.event).filter((n) => n !== 'ready')).toEqual(['post.updated']);
    const bad = await SseStream.open(`${a.url}/notifications/stream?types=post.liked`);
    expect(bad.status).toBe(400);
    expect(bad.body).toContain("'post.liked'");
    expect(JSON.parse(bad.body)).toMatchObject({ code: 'VALIDATION.FAILED', errors: [{ field: 'types' }] });
    for (const name of PRIVATE_NAMES) {
      const refused = await SseStream.open(`${a.url}/notifications/stream?types=post.created,${name}`);
      expect(refused.status).toBe(400);
      expect(JSON.parse(refused.body)).toMatchObject({
        code: 'VALIDATION.FAILED',
        errors: [{ field: 'types', message: expect.stringContaining(`'${name}'`) }],
      });
    }

    // A page opened now sees what happened just before: the last events of each partition, then the live feed.
    const late = await SseStream.open(`${a.url}/notifications/stream?types=post.updated&recent=5`);
    streams.push(late);
    await late.waitFor('the updated post from before it opened', (s) =>
      postEvents(s).some((e) => e.data.postId === other),
    );
    expect(privateEvents(late)).toEqual([]);
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
    // Only an id a replica gave out: not one made up (the whole history from 0), nor one changed.
    const signature = lastEventId.slice(lastEventId.indexOf('~'));
    for (const forged of ['posts:1;evil:2', 'posts:0,0,0', `posts:0,0,0${signature}`]) {
      const refused = await SseStream.open(`${other.url}/notifications/stream`, { 'Last-Event-ID': forged });
      expect({ forged, status: refused.status, code: (JSON.parse(refused.body) as { code: string }).code }).toEqual({
        forged,
        status: 400,
        code: 'NOTIFIER.BAD_LAST_EVENT_ID',
      });
    }
  });

  it("a user's own stream carries their events only: their videos, their emails, no one else's, none without an owner", async () => {
    const notifier = await bootNotifier();
    const [alice, bob] = [await signUp(api.url), await signUp(api.url)];
    // Alice as a browser: the cookie from POST /notifications/session. Bob as curl: the Bearer header.
    const { setCookie, headers: aliceCookie } = await session(notifier.url, alice);
    expect(setCookie).toMatch(
      /^notifier_session=[^;]+; Max-Age=\d+; Path=\/notifications; Expires=[^;]+; HttpOnly; SameSite=Strict$/,
    );
    expect(Number(/Max-Age=(\d+)/.exec(setCookie)![1])).toBeLessThanOrEqual(900);
    const [onAlice, onBob, onPublic] = [
      await openMine(notifier.url, aliceCookie),
      await openMine(notifier.url, bob.auth),
      await open(notifier.url),
    ];
    for (const stream of [onAlice, onBob, onPublic])
      await stream.waitFor('the ready event', (s) => s.named('ready').length === 1);

    const [aliceVideo, bobVideo] = [randomUUID(), randomUUID()];
    await publish(
      'video.progress.v1',
      { videoId: aliceVideo, ownerId: alice.userId, progress: 50, stage: 'preview', attempt: 1 },
      aliceVideo,
    );
    await videoFailed(bobVideo, bob.userId);
    await videoFailed(randomUUID());
    await videoProcessed(aliceVideo, alice.userId);
    await emailSent(bob.userId);
    await emailSent(alice.userId);
    await onAlice.waitFor('her 3 events', (s) => privateEvents(s).length === 3);
    await onBob.waitFor('his 2 events', (s) => privateEvents(s).length === 2);
    const last = await videoProcessed(randomUUID(), bob.userId);
    await onBob.waitFor('his last video', (s) => s.events.some((e) => e.data.includes(last.id)));

    expect(
      onAlice.events
        .filter((e) => e.event !== 'ready')
        .map((e) => e.event)
        .sort(),
    ).toEqual(['email.sent', 'video.processed', 'video.progress']);
    expect(privateEvents(onAlice).every((e) => (e.data.ownerId ?? e.data.userId) === alice.userId)).toBe(true);
    expect(privateEvents(onBob).map((e) => e.data.ownerId ?? e.data.userId)).toEqual(Array(3).fill(bob.userId));
    expect(privateEvents(onPublic)).toEqual([]);
    // Her stream's ids are signed for it: Bob cannot resume from one, nor the public stream, nor anyone after a change.
    const hers = onAlice.lastEventId!;
    expect(hers).toMatch(/^video-processed:\d+(,\d+)*;emails-sent:\d+(,\d+)*~[A-Za-z0-9_-]{22}$/);
    const refusals = [
      await openMine(notifier.url, { ...bob.auth, 'Last-Event-ID': hers }),
      await open(notifier.url, { 'Last-Event-ID': hers }),
      await openMine(notifier.url, { ...aliceCookie, 'Last-Event-ID': onPublic.lastEventId! }),
      await openMine(notifier.url, {
        ...aliceCookie,
        'Last-Event-ID': hers.replace(/\d+/, (n) => String(Number(n) + 1)),
      }),
    ];
    for (const refused of refusals) {
      expect({ status: refused.status, body: JSON.parse(refused.body || 'null') as unknown }).toMatchObject({
        status: 400,
        body: { code: 'NOTIFIER.BAD_LAST_EVENT_ID' },
      });
    }
    // A public name is not on this stream; signing out clears the cookie; no credentials is a 401.
    expect((await openMine(notifier.url, bob.auth, '?types=post.created')).status).toBe(400);
    const out = await fetch(`${notifier.url}/notifications/session`, { method: 'DELETE', headers: aliceCookie });
    expect(out.status).toBe(204);
    expect(out.headers.getSetCookie()[0]).toMatch(/^notifier_session=; Path=\/notifications; Expires=Thu, 01 Jan 1970/);
    // CORS: the console's origin may send the cookie; another site's page may read nothing; with `*`,
    // any page may read the public stream, never with credentials.
    const corsOf = async (url: string, origin: string) => {
      const answer = await fetch(`${url}/notifications/session`, { method: 'POST', headers: { origin, ...bob.auth } });
      return {
        status: answer.status,
        origin: answer.headers.get('access-control-allow-origin'),
        credentials: answer.headers.get('access-control-allow-credentials'),
      };
    };
    expect(await corsOf(notifier.url, 'http://127.0.0.1:3005')).toEqual({
      status: 204,
      origin: 'http://127.0.0.1:3005',
      credentials: 'true',
    });
    // No Access-Control-Allow-Origin: the browser lets that page read nothing (whatever else the answer says).
    expect(await corsOf(notifier.url, 'https://evil.example')).toMatchObject({ origin: null });
    const anyOrigin = await bootNotifier({ NOTIFIER_ALLOWED_ORIGINS: '*' });
    expect(await corsOf(anyOrigin.url, 'https://evil.example')).toMatchObject({ origin: '*', credentials: null });
    const anonymous = await openMine(notifier.url, {});
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.body)).toMatchObject({ code: 'AUTH.TOKEN_MISSING' });
    const forged = await openMine(notifier.url, { cookie: aliceCookie.cookie.replace(alice.userId, bob.userId) });
    expect(forged.status).toBe(401);
  });

  it("a user's stream resumes on another replica: exactly that user's missed events, once, in order", async () => {
    const [a, b] = [await bootNotifier(), await bootNotifier()];
    const [alice, bob] = [await signUp(api.url), await signUp(api.url)];
    const { headers: cookie } = await session(a.url, alice);
    const first = await openMine(a.url, cookie);
    await first.waitFor('the ready event', (s) => s.named('ready').length === 1);
    const video = randomUUID();
    await videoFailed(video, alice.userId);
    await first.waitFor('her first event', (s) => privateEvents(s).length === 1);
    const lastEventId = first.lastEventId!;
    first.close();

    // Missed while she was away: hers, interleaved with Bob's and an owner-less one.
    const missed: string[] = [];
    for (let n = 0; n < 3; n++) {
      missed.push((await videoProcessed(video, alice.userId)).id);
      await videoProcessed(randomUUID(), bob.userId);
      await emailSent(bob.userId);
    }
    await videoProcessed(randomUUID());
    missed.push((await emailSent(alice.userId)).id);

    // The cookie made by replica A is good on B (the same NOTIFIER_STREAM_SECRET), and so is her last id.
    const resumed = await openMine(b.url, { ...cookie, 'Last-Event-ID': lastEventId });
    expect(resumed.status).toBe(200);
    await resumed.waitFor('every missed event', (s) => privateEvents(s).length >= missed.length);
    expect(resumed.named('ready')[0]).toMatchObject({ resumed: true });
    const got = resumed.events
      .filter((e) => PRIVATE_NAMES.includes(e.event))
      .map((e) => (JSON.parse(e.data) as { id: string }).id);
    expect([...got].sort()).toEqual([...missed].sort());
    // In order per video (one partition): the three processed events as written.
    expect(got.filter((id) => missed.slice(0, 3).includes(id))).toEqual(missed.slice(0, 3));
    expect(privateEvents(resumed).every((e) => (e.data.ownerId ?? e.data.userId) === alice.userId)).toBe(true);

    // Then live, once.
    const live = await emailSent(alice.userId);
    await resumed.waitFor('the live email', (s) => s.events.some((e) => e.data.includes(live.id)));
    expect(resumed.events.filter((e) => e.data.includes(live.id))).toHaveLength(1);
    expect(privateEvents(resumed)).toHaveLength(missed.length + 1);
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
