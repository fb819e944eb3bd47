import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { PostCache } from '@app/cache';
import { cacheInvalidatorConfigSchema, loadConfig } from '@app/config';
import { ensureDatabase } from '@app/database';
import { ALL_TOPICS } from '@app/contracts';
import { ensureTopics } from '@app/messaging';
import { RunningApp, startApp } from '@app/runtime';
import { cacheInvalidatorApp } from '../apps/cache-invalidator/src/app';
import { Account, signUp } from './support/accounts';
import { bootUsersApi } from './support/apps';
import { testKafka } from './support/broker';
import { appEnv, TEST_DATABASE_URL } from './support/env';
import { TestRedis } from './support/redis';
import { waitFor } from './support/wait';

interface Post {
  id: string;
  authorId: string;
  title: string;
  body: string;
  version: number;
}

/**
 * Posts through users-api, the Redis cache it reads through, and the cache-invalidator that keeps that cache correct
 * from the `posts` events — real broker, PostgreSQL and a Redis of the suite's own that it kills and restarts.
 */
describe('posts: cache-aside kept correct by events', () => {
  const redis = new TestRedis();
  const db = new Client({ connectionString: TEST_DATABASE_URL });
  const group = `cache-invalidator-${randomUUID().slice(0, 8)}`;
  let api: RunningApp;
  let invalidator: RunningApp | undefined;
  let author: Account;

  const startInvalidator = async () => {
    invalidator = await startApp(
      cacheInvalidatorApp,
      loadConfig(
        'cache-invalidator',
        cacheInvalidatorConfigSchema,
        appEnv({ REDIS_URL: redis.url, CACHE_INVALIDATOR_GROUP: group, REDIS_COMMAND_TIMEOUT_MS: '500' }),
      ),
    );
  };
  const stopInvalidator = async () => {
    await invalidator?.app.close();
    invalidator = undefined;
  };

  /** A request as `as` (the author unless told otherwise; `null`: no token). */
  const call = (
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
    as: Account | null = author,
  ) =>
    fetch(`${api.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...(as ? as.auth : {}), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const createPost = async (title = 'first title'): Promise<Post> => {
    const response = await call('POST', '/posts', { title, body: 'line one\nline two' });
    expect(response.status).toBe(201);
    return (await response.json()) as Post;
  };
  const read = async (id: string) => {
    const response = await call('GET', `/posts/${id}`);
    return { status: response.status, cache: response.headers.get('x-cache'), post: (await response.json()) as Post };
  };
  const patch = async (id: string, version: number, title: string) => {
    const response = await call('PATCH', `/posts/${id}`, { title }, { 'if-match': `"${version}"` });
    expect(response.status).toBe(200);
    return (await response.json()) as Post;
  };
  const published = async (id: string, type: string) =>
    (
      await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM users_api.outbox WHERE message_key = $1 AND event_type = $2 AND published_at IS NOT NULL`,
        [id, type],
      )
    ).rows[0].n;

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    await redis.start();
    await ensureDatabase(TEST_DATABASE_URL);
    await db.connect();
    api = await bootUsersApi({ REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '500', POST_CACHE_TTL_SECONDS: '600' });
    await startInvalidator();
    author = await signUp(api.url);
  });

  afterAll(async () => {
    await stopInvalidator();
    await api?.app.close();
    await db.end();
    await redis.destroy();
  });

  it('caches a read, and after a PATCH the next reads see the new title once the invalidator has run', async () => {
    const post = await createPost();
    expect(post.version).toBe(1);
    expect((await read(post.id)).cache).toBe('miss');
    const cached = await read(post.id);
    expect(cached).toMatchObject({ status: 200, cache: 'hit', post: { title: 'first title', version: 1 } });

    const updated = await patch(post.id, 1, 'second title');
    expect(updated.version).toBe(2);
    await waitFor('the new title to be read', async () => (await read(post.id)).post.title === 'second title', {
      timeoutMs: 20_000,
    });

    // Optimistic concurrency: a stale version is refused, a missing If-Match asks for one.
    const stale = await call('PATCH', `/posts/${post.id}`, { title: 'lost update' }, { 'if-match': '"1"' });
    expect(stale.status).toBe(412);
    expect(await stale.json()).toMatchObject({ code: 'POST.VERSION_MISMATCH' });
    const missing = await call('PATCH', `/posts/${post.id}`, { title: 'blind write' });
    expect(missing.status).toBe(428);
    expect((await read(post.id)).post).toMatchObject({ title: 'second title', version: 2 });
  });

  it('with the invalidator stopped the cached post stays stale; once it runs again the read is fresh', async () => {
    const post = await createPost('before');
    await read(post.id);
    expect((await read(post.id)).cache).toBe('hit');
    await stopInvalidator();

    await patch(post.id, 1, 'after');
    await waitFor(
      'post.updated.v1 to be on the broker',
      async () => (await published(post.id, 'post.updated.v1')) === 1,
    );
    // users-api never deletes cache keys itself: without the invalidator the entry is stale until its TTL.
    const stale = await read(post.id);
    expect(stale).toMatchObject({ cache: 'hit', post: { title: 'before', version: 1 } });

    await startInvalidator();
    await waitFor('the read to be fresh again', async () => (await read(post.id)).post.title === 'after', {
      timeoutMs: 30_000,
    });
  });

  it('closes the read/invalidate race: a reader that read the old row before the update cannot cache it after', async () => {
    const post = await createPost('old row');
    const cache = api.app.get(PostCache);
    const fill = cache.fill.bind(cache);
    let readOld!: () => void;
    const readerHasRead = new Promise<void>((resolve) => (readOld = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const fills: boolean[] = [];
    // The reader is held between its database read and its cache write.
    cache.fill = async <T>(id: string, generation: string, version: number, value: T) => {
      if (id !== post.id) return fill(id, generation, version, value);
      readOld();
      await gate;
      const written = await fill(id, generation, version, value);
      fills.push(written);
      return written;
    };
    try {
      const reader = read(post.id);
      await readerHasRead;
      // Meanwhile the update commits and is invalidated.
      await patch(post.id, 1, 'new row');
      const client = redis.client();
      try {
        await waitFor(
          'the invalidator to raise the version floor',
          async () => Number(await client.get(PostCache.floorKey(cache.generation, post.id))) >= 2,
        );
        release();
        expect(await reader).toMatchObject({ cache: 'miss', post: { title: 'old row', version: 1 } });
        // The late write of the old row was refused: nothing stale in the cache.
        expect(fills).toEqual([false]);
        expect(await client.get(PostCache.entryKey(cache.generation, post.id))).toBeNull();
      } finally {
        client.disconnect();
      }
      expect((await read(post.id)).post).toMatchObject({ title: 'new row', version: 2 });
      expect((await read(post.id)).cache).toBe('hit');
    } finally {
      release();
      cache.fill = fill;
    }
  });

  it('Redis killed while posts change: reads fall back to the database, and after it returns nothing stale remains', async () => {
    const post = await createPost('cached before the crash');
    await read(post.id);
    expect((await read(post.id)).cache).toBe('hit');
    const retriedBefore = invalidator!.server.stats.retried;

    await redis.stop('SIGKILL');
    const during = await read(post.id);
    expect(during).toMatchObject({ status: 200, cache: 'bypass', post: { version: 1 } });
    const ready = await fetch(`${api.url}/health/ready`);
    expect(ready.status).toBe(200);
    const report = (await ready.json()) as { details: Record<string, { status: string }> };
    expect(report.details.redis.status).toBe('degraded');
    // Writes do not touch Redis.
    await patch(post.id, 1, 'changed while Redis was down');
    expect((await read(post.id)).post).toMatchObject({ title: 'changed while Redis was down', version: 2 });
    await waitFor('the invalidator to retry', () => invalidator!.server.stats.retried > retriedBefore, {
      timeoutMs: 20_000,
    });

    // Redis persists the entry cached before the crash, but its restart starts a new cache generation: that entry is
    // never read again, and the first read after the restart caches the new version.
    await redis.start();
    await waitFor(
      'the read to be fresh from the cache',
      async () => {
        const now = await read(post.id);
        return now.cache === 'hit' && now.post.version === 2;
      },
      { timeoutMs: 30_000 },
    );
  });

  it('deletes: the read goes 404 once the invalidator removed the cached post', async () => {
    const post = await createPost('to delete');
    await read(post.id);
    const wrongVersion = await call('DELETE', `/posts/${post.id}`, undefined, { 'if-match': '"7"' });
    expect(wrongVersion.status).toBe(412);
    const removed = await call('DELETE', `/posts/${post.id}`, undefined, { 'if-match': '"1"' });
    expect(removed.status).toBe(204);
    await waitFor('the read to be 404', async () => (await read(post.id)).status === 404, { timeoutMs: 20_000 });
    expect((await call('DELETE', `/posts/${post.id}`)).status).toBe(404);
  });

  it('pages newest first by author, with a cursor that neither skips nor repeats', async () => {
    const pagerAccount = await signUp(api.url);
    const pager = pagerAccount.userId;
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await call('POST', '/posts', { title: `post ${i}`, body: 'text' }, {}, pagerAccount);
      made.push(((await response.json()) as Post).id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `/posts?authorId=${pager}&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await (await call('GET', query)).json()) as { items: Post[]; nextCursor: string | null };
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((p) => p.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...made].reverse());
  });

  it('bad input gets 4xx with a message per field, and nothing is written', async () => {
    const cases: [unknown, number, string[]][] = [
      [{}, 400, ['title', 'body']],
      [{ title: 'a\r\nBcc: x', body: 'b' }, 400, ['title']],
      [{ title: 't', body: 'carriage\rreturn' }, 400, ['body']],
      [{ title: 't', body: 'b', role: 'admin' }, 400, ['role']],
      [{ title: ' ', body: 'b', authorId: 'nope' }, 400, ['title', 'authorId']],
    ];
    for (const [body, status, fields] of cases) {
      const response = await call('POST', '/posts', body);
      expect(response.status).toBe(status);
      const error = (await response.json()) as { errors?: { field: string }[] };
      expect({ body, fields: error.errors?.map((e) => e.field).sort() ?? error }).toEqual({
        body,
        fields: [...fields].sort(),
      });
    }
    expect((await call('GET', '/posts/not-a-uuid')).status).toBe(400);
    expect((await call('GET', `/posts/${randomUUID()}`)).status).toBe(404);
    expect((await call('GET', '/posts?limit=0')).status).toBe(400);
    expect((await call('GET', '/posts?cursor=bm90LWEtY3Vyc29y')).status).toBe(400);
    expect((await call('GET', '/posts?sort=title')).status).toBe(400);
    const post = await createPost('valid');
    expect((await call('PATCH', `/posts/${post.id}`, {}, { 'if-match': '"1"' })).status).toBe(400);
    expect((await call('PATCH', `/posts/${post.id}`, { title: 'x' }, { 'if-match': 'W/"1"' })).status).toBe(400);
    expect((await call('PATCH', `/posts/${post.id}`, { authorId: author.userId }, { 'if-match': '"1"' })).status).toBe(
      400,
    );
  });

  describe('ownership: only the author writes a post, anyone reads it', () => {
    /** Everything a refused write must leave as it was: the row, its version, and its events. */
    const stateOf = async (id: string) => ({
      row: (await db.query(`SELECT title, body, version, author_id FROM users_api.posts WHERE id = $1`, [id])).rows,
      events: (
        await db.query<{ type: string }>(
          `SELECT event_type AS type FROM users_api.outbox WHERE message_key = $1 ORDER BY id`,
          [id],
        )
      ).rows.map((row) => row.type),
    });
    const postCount = async () =>
      (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM users_api.posts`)).rows[0].n;

    it("a post is the signed-in user's: an authorId in the body is refused, naming it, and no post is made", async () => {
      const other = await signUp(api.url);
      const before = await postCount();
      const response = await call('POST', '/posts', { title: 't', body: 'b', authorId: other.userId });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({
        code: 'VALIDATION.FAILED',
        errors: [{ field: 'authorId', message: 'is not an allowed field' }],
      });
      const anonymous = await call('POST', '/posts', { title: 't', body: 'b' }, {}, null);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
      expect(await postCount()).toBe(before);
      // Without an authorId, the post is the caller's.
      const own = (await (await call('POST', '/posts', { title: 't', body: 'b' }, {}, other)).json()) as Post;
      expect(own.authorId).toBe(other.userId);
    });

    it("someone else's PATCH or DELETE: 403 POST.NOT_AUTHOR, the post unchanged, no event", async () => {
      const post = await createPost('mine');
      const before = await stateOf(post.id);
      expect(before.events).toEqual(['post.created.v1']);
      const stranger = await signUp(api.url);
      for (const ifMatch of ['"1"', '*']) {
        const patched = await call(
          'PATCH',
          `/posts/${post.id}`,
          { title: 'theirs' },
          { 'if-match': ifMatch },
          stranger,
        );
        expect({ ifMatch, status: patched.status, body: await patched.json() }).toEqual({
          ifMatch,
          status: 403,
          body: expect.objectContaining({ code: 'POST.NOT_AUTHOR' }),
        });
        const deleted = await call('DELETE', `/posts/${post.id}`, undefined, { 'if-match': ifMatch }, stranger);
        // As text: a wrongly accepted delete (204) has no body to parse, and must fail on the status.
        expect({ ifMatch, status: deleted.status, body: await deleted.text() }).toEqual({
          ifMatch,
          status: 403,
          body: expect.stringContaining('"code":"POST.NOT_AUTHOR"'),
        });
      }
      // Without a token: 401, and the same nothing.
      expect((await call('PATCH', `/posts/${post.id}`, { title: 'x' }, { 'if-match': '"1"' }, null)).status).toBe(401);
      expect((await call('DELETE', `/posts/${post.id}`, undefined, {}, null)).status).toBe(401);
      expect(await stateOf(post.id)).toEqual(before);
      // Reading stays public; the author still writes.
      expect((await call('GET', `/posts/${post.id}`, undefined, {}, null)).status).toBe(200);
      expect((await patch(post.id, 1, 'still mine')).version).toBe(2);
      expect((await call('DELETE', `/posts/${post.id}`, undefined, { 'if-match': '"2"' })).status).toBe(204);
    });
  });
});
