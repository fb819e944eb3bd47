import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { PostCache, REDIS } from '@app/cache';
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
  title: string;
  version: number;
}

interface Read {
  status: number;
  cache: string | null;
  post: Post;
}

/** The version floor the cache holds for a post: the newest invalidation applied. */
async function floorOf(client: Redis, id: string): Promise<number> {
  const runId = /run_id:(\w+)/.exec(await client.info('server'))?.[1] ?? '';
  return Number(await client.get(PostCache.floorKey(PostCache.generationOf(runId), id)));
}

/** users-api and a cache-invalidator of their own on one TestRedis, real broker and PostgreSQL. */
class Stack {
  api!: RunningApp;
  invalidator!: RunningApp;
  /** The author of every post, signed in. */
  private author?: Account;

  constructor(readonly redis: TestRedis) {}

  async start(): Promise<this> {
    const redis = { REDIS_URL: this.redis.url, REDIS_COMMAND_TIMEOUT_MS: '500' };
    this.api = await bootUsersApi({ ...redis, POST_CACHE_TTL_SECONDS: '600' });
    const group = `cache-invalidator-${randomUUID().slice(0, 8)}`;
    this.invalidator = await startApp(
      cacheInvalidatorApp,
      loadConfig(
        'cache-invalidator',
        cacheInvalidatorConfigSchema,
        appEnv({ ...redis, CACHE_INVALIDATOR_GROUP: group }),
      ),
    );
    this.author = await signUp(this.api.url);
    return this;
  }

  async stop(): Promise<void> {
    await this.invalidator?.app.close();
    await this.api?.app.close();
  }

  get stats() {
    return this.invalidator.server.stats;
  }

  call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    return fetch(`${this.api.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...this.author?.auth, ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  async createPost(title: string): Promise<Post> {
    const response = await this.call('POST', '/posts', { title, body: 'text' });
    expect(response.status).toBe(201);
    return (await response.json()) as Post;
  }

  async read(id: string): Promise<Read> {
    const response = await this.call('GET', `/posts/${id}`);
    return { status: response.status, cache: response.headers.get('x-cache'), post: (await response.json()) as Post };
  }

  async patch(id: string, version: number, title: string): Promise<Post> {
    const response = await this.call('PATCH', `/posts/${id}`, { title }, { 'if-match': `"${version}"` });
    expect(response.status).toBe(200);
    return (await response.json()) as Post;
  }

  /**
   * Reads each post until it is a cache hit at its latest version; any hit older than that is recorded (and ends the
   * wait) unless `lagging`: an invalidation not applied yet is ordinary lag, not a fault.
   */
  async readUntilFresh(latest: Map<string, number>, timeoutMs: number, lagging = false): Promise<Read[]> {
    const staleHits: Read[] = [];
    await waitFor(
      'every post to be a cache hit at its latest version',
      async () => {
        let fresh = 0;
        for (const [id, version] of latest) {
          const now = await this.read(id);
          expect(now.status).toBe(200);
          if (now.cache === 'hit' && now.post.version < version && !lagging) staleHits.push(now);
          if (now.cache === 'hit' && now.post.version === version) fresh += 1;
        }
        return staleHits.length > 0 || fresh === latest.size;
      },
      { timeoutMs, intervalMs: 50 },
    );
    return staleHits;
  }
}

/** Cached posts kept correct across a Redis that is away for a long time, or that comes back without its last writes. */
describe('posts cache across Redis outages and restarts', () => {
  let stack: Stack | undefined;

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    await ensureDatabase(TEST_DATABASE_URL);
  });

  afterEach(async () => {
    await stack?.stop();
    await stack?.redis.destroy();
    stack = undefined;
  });

  it('Redis away for 60 s while posts change: every invalidation lands once it is back, none is dead-lettered, nothing stale is served', async () => {
    const s = (stack = await new Stack(await new TestRedis().start()).start());
    const posts = await Promise.all([1, 2, 3, 4].map((i) => s.createPost(`post ${i} v1`)));
    for (const post of posts) {
      await s.read(post.id);
      expect((await s.read(post.id)).cache).toBe('hit');
    }
    const before = { ...s.stats };

    await s.redis.stop('SIGKILL');
    const down = Date.now();
    const latest = new Map<string, number>();
    for (const post of posts) latest.set(post.id, (await s.patch(post.id, 1, `${post.title} → v2`)).version);
    // Past the whole retry budget of an ordinary failure (6 attempts, at most 2 s apart here), then more changes.
    await waitFor('the invalidations to be retried past the attempt budget', () => Date.now() - down > 30_000, {
      timeoutMs: 35_000,
      intervalMs: 1000,
    });
    for (const post of posts.slice(0, 2))
      latest.set(post.id, (await s.patch(post.id, 2, `${post.title} → v3`)).version);
    expect((await s.read(posts[0].id)).cache).toBe('bypass');
    await waitFor('60 s of outage', () => Date.now() - down > 60_000, { timeoutMs: 35_000, intervalMs: 1000 });
    expect(s.stats.retried).toBeGreaterThan(before.retried);
    expect(s.stats.deadLettered).toBe(0);

    await s.redis.start();
    const staleHits = await s.readUntilFresh(latest, 30_000);
    expect(staleHits).toEqual([]);
    // Every invalidation made during the outage was applied by a retry, none given up on.
    const client = s.redis.client();
    try {
      for (const [id, version] of latest) {
        await waitFor(
          `the invalidation of ${id} to version ${version}`,
          async () => (await floorOf(client, id)) === version,
          {
            timeoutMs: 15_000,
          },
        );
      }
    } finally {
      client.disconnect();
    }
    expect(s.stats.deadLettered).toBe(0);
  }, 150_000);

  it('Redis back from a snapshot older than its last invalidations (RDB only, SIGKILL): nothing stale is served', async () => {
    const s = (stack = await new Stack(await new TestRedis({ persistence: 'rdb' }).start()).start());
    const posts = await Promise.all([1, 2, 3].map((i) => s.createPost(`post ${i} v1`)));
    for (const post of posts) {
      await s.read(post.id);
      expect((await s.read(post.id)).cache).toBe('hit');
    }
    const client = s.redis.client();
    try {
      expect(await client.save()).toBe('OK');
    } finally {
      client.disconnect();
    }

    // Changed and invalidated after the snapshot: the new versions are what the cache serves before the crash.
    const latest = new Map<string, number>();
    for (const post of posts) latest.set(post.id, (await s.patch(post.id, 1, `${post.title} → v2`)).version);
    await s.readUntilFresh(latest, 20_000, true);

    await s.redis.stop('SIGKILL');
    await s.redis.start();
    const staleHits = await s.readUntilFresh(latest, 20_000);
    expect(staleHits).toEqual([]);
    expect(s.stats.deadLettered).toBe(0);
  }, 90_000);
  it('a reader held across a crash that lost the floor of a newer version cannot cache the old row it read', async () => {
    const s = (stack = await new Stack(await new TestRedis({ persistence: 'rdb' }).start()).start());
    const post = await s.createPost('old row');
    const client = s.redis.client();
    try {
      expect(await client.save()).toBe('OK');
    } finally {
      client.disconnect();
    }
    const cache = s.api.app.get(PostCache);
    const fill = cache.fill.bind(cache);
    let readOld!: () => void;
    const readerHasRead = new Promise<void>((resolve) => (readOld = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const fills: boolean[] = [];
    let held = false;
    // The first reader is held between its database read and its cache write.
    cache.fill = async (...args: Parameters<PostCache['fill']>) => {
      if (args[0] !== post.id || held) return fill(...args);
      held = true;
      readOld();
      await gate;
      const written = await fill(...args);
      fills.push(written);
      return written;
    };
    const invalidator = s.invalidator.app.get(PostCache);
    const invalidate = invalidator.invalidate.bind(invalidator);
    const invalidated: number[] = [];
    invalidator.invalidate = async (id: string, version: number) => {
      const removed = await invalidate(id, version);
      if (id === post.id) invalidated.push(version);
      return removed;
    };
    try {
      const reader = s.read(post.id);
      await readerHasRead;
      await s.patch(post.id, 1, 'new row');
      await waitFor('the update to be invalidated', () => invalidated.includes(2));
      // The floor that would refuse the old row was written after the snapshot: the crash loses it.
      await s.redis.stop('SIGKILL');
      await s.redis.start();
      const apiRedis = s.api.app.get<symbol, Redis>(REDIS);
      await waitFor('users-api to reach Redis again', () => apiRedis.status === 'ready');
      release();
      expect(await reader).toMatchObject({ cache: 'miss', post: { title: 'old row', version: 1 } });
      const staleHits = await s.readUntilFresh(new Map([[post.id, 2]]), 20_000);
      expect(staleHits).toEqual([]);
      expect(fills).toEqual([false]);
    } finally {
      release();
      cache.fill = fill;
      invalidator.invalidate = invalidate;
    }
  }, 60_000);
});
