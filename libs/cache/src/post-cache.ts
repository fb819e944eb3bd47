import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG, RedisConfig } from '@app/config';
import { REDIS } from './redis';
import { CacheGenerationChangedError } from './redis-errors';

/**
 * Opens every script: the generation is the start of the run_id of the Redis process running it. A script sent for
 * another generation does nothing and answers {'generation', <current>}. Checked inside the script, so no command
 * of an earlier process's generation can ever touch this one's keys, however the connection came and went.
 * ARGV[1]: the generation the client means.
 */
const IN_GENERATION = `
local run_id = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
local generation = string.sub(run_id, 1, 12)
if generation ~= ARGV[1] then return {'generation', generation} end`;

/** KEYS: entry. Answers {'ok', entry or nil}. */
const LOOKUP = `${IN_GENERATION}
return {'ok', redis.call('GET', KEYS[1])}`;

/**
 * Fills an entry unless the version is older than the key's floor or than the entry already there.
 * KEYS: entry, floor. ARGV: generation, version, value, ttl ms. Answers {'ok', 1} when written.
 */
const FILL = `${IN_GENERATION}
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
local version = tonumber(ARGV[2])
if version < floor then return {'ok', 0} end
local current = redis.call('GET', KEYS[1])
if current then
  local cached = tonumber(string.match(current, '^(%d+):'))
  if cached and cached >= version then return {'ok', 0} end
end
redis.call('SET', KEYS[1], ARGV[2] .. ':' .. ARGV[3], 'PX', ARGV[4])
return {'ok', 1}`;

/**
 * Raises the floor to the version (never lowers it) and removes an entry older than it.
 * KEYS: entry, floor. ARGV: generation, version, floor ttl ms. Answers {'ok', 1} when an entry was removed.
 */
const INVALIDATE = `${IN_GENERATION}
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
local version = tonumber(ARGV[2])
if version > floor then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
else
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
local current = redis.call('GET', KEYS[1])
if not current then return {'ok', 0} end
local cached = tonumber(string.match(current, '^(%d+):'))
if cached and cached >= version then return {'ok', 0} end
redis.call('DEL', KEYS[1])
return {'ok', 1}`;

/** The floor outlives any reader still between its database read and its cache write by far. */
const MIN_FLOOR_TTL_MS = 3_600_000;

const GENERATION_LENGTH = 12;

export interface CachedPost<T> {
  version: number;
  value: T;
}

/** A lookup's answer: the entry if any, and the generation it was looked up in — a later fill must name it. */
export interface PostLookup<T> {
  entry?: CachedPost<T>;
  generation: string;
}

type Reply = ['ok', string | number | null] | ['generation', string];

type VersionedRedis = Redis & {
  postCacheLookup(entry: string, generation: string): Promise<Reply>;
  postCacheFill(entry: string, floor: string, ...args: [string, number, string, number]): Promise<Reply>;
  postCacheInvalidate(entry: string, floor: string, ...args: [string, number, number]): Promise<Reply>;
};

/**
 * A versioned cache-aside for posts. Readers fill the entry with the version they read; the invalidator, on each
 * change, raises the key's version floor to the new version and deletes older entries. A fill older than the floor
 * is refused, which closes the classic race: a reader that missed, read the old row, and writes it after the
 * update's invalidation cannot leave a stale entry behind. The braces make both keys of a post one Redis Cluster
 * hash slot, so each script runs on one node.
 *
 * Keys live in a generation: the Redis process's run_id. A Redis that restarts may come back without its last writes
 * (an RDB snapshot, an unsynced AOF, no persistence) — invalidations and floors it had acknowledged are gone, while
 * entries they removed may be back. Its new run_id starts a new, empty generation: nothing written before the
 * restart is read again, and a fill whose database read began in the old generation is refused (its floor may be
 * among the lost writes). The price is a cold cache after every restart, a clean one included.
 */
@Injectable()
export class PostCache {
  private readonly logger = new Logger(PostCache.name);
  private readonly redis: VersionedRedis;
  readonly ttlMs: number;
  /** The generation last answered by Redis; '' until the first answer. */
  private current = '';

  constructor(@Inject(REDIS) redis: Redis, @Inject(APP_CONFIG) config: RedisConfig) {
    this.ttlMs = config.POST_CACHE_TTL_SECONDS * 1000;
    redis.defineCommand('postCacheLookup', { numberOfKeys: 1, lua: LOOKUP });
    redis.defineCommand('postCacheFill', { numberOfKeys: 2, lua: FILL });
    redis.defineCommand('postCacheInvalidate', { numberOfKeys: 2, lua: INVALIDATE });
    this.redis = redis as VersionedRedis;
  }

  /** The generation of a Redis process, from its run_id (INFO server). */
  static generationOf(runId: string): string {
    return runId.slice(0, GENERATION_LENGTH);
  }

  static entryKey(generation: string, id: string): string {
    return `post:${generation}:{${id}}`;
  }

  static floorKey(generation: string, id: string): string {
    return `post:${generation}:{${id}}:floor`;
  }

  get generation(): string {
    return this.current;
  }

  async lookup<T>(id: string): Promise<PostLookup<T>> {
    const { generation, value } = await this.inCurrentGeneration((g) =>
      this.redis.postCacheLookup(PostCache.entryKey(g, id), g),
    );
    if (typeof value !== 'string') return { generation };
    const colon = value.indexOf(':');
    const entry = { version: Number(value.slice(0, colon)), value: JSON.parse(value.slice(colon + 1)) as T };
    return { generation, entry };
  }

  /**
   * Writes what a reader read from the database after its lookup in `generation`; false when a newer version was
   * invalidated or cached meanwhile, or Redis restarted since the lookup.
   */
  async fill<T>(id: string, generation: string, version: number, value: T): Promise<boolean> {
    const reply = await this.redis.postCacheFill(
      PostCache.entryKey(generation, id),
      PostCache.floorKey(generation, id),
      generation,
      version,
      JSON.stringify(value),
      this.ttlMs,
    );
    if (reply[0] === 'generation') {
      this.learn(reply[1]);
      return false;
    }
    return reply[1] === 1;
  }

  /** The post changed to `version` (or was deleted, with the version after its last): older entries go away. */
  async invalidate(id: string, version: number): Promise<boolean> {
    const floorTtlMs = Math.max(this.ttlMs, MIN_FLOOR_TTL_MS);
    const { value } = await this.inCurrentGeneration((g) =>
      this.redis.postCacheInvalidate(PostCache.entryKey(g, id), PostCache.floorKey(g, id), g, version, floorTtlMs),
    );
    return value === 1;
  }

  /** Runs a script in the generation last seen; when Redis answers with a newer one, once more in that one. */
  private async inCurrentGeneration(
    run: (generation: string) => Promise<Reply>,
  ): Promise<{ generation: string; value: string | number | null }> {
    for (let tries = 0; tries < 2; tries++) {
      const generation = this.current;
      const reply = await run(generation);
      if (reply[0] === 'ok') return { generation, value: reply[1] };
      this.learn(reply[1]);
    }
    throw new CacheGenerationChangedError('Redis restarted twice in a row while the post cache was switching to it');
  }

  private learn(generation: string): void {
    if (generation === this.current) return;
    if (this.current !== '') {
      this.logger.warn(
        `Redis restarted (run_id ${generation}…): post cache generation ${this.current} → ${generation}; ` +
          'entries cached before the restart are not read again',
      );
    }
    this.current = generation;
  }
}
