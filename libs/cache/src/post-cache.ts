import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG, RedisConfig } from '@app/config';
import { REDIS } from './redis';

/**
 * Fills an entry unless the version is older than the key's floor or than the entry already there.
 * KEYS: entry, floor. ARGV: version, value, ttl ms. Returns 1 when written.
 */
const FILL = `
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
local version = tonumber(ARGV[1])
if version < floor then return 0 end
local current = redis.call('GET', KEYS[1])
if current then
  local cached = tonumber(string.match(current, '^(%d+):'))
  if cached and cached >= version then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1`;

/**
 * Raises the floor to the version (never lowers it) and removes an entry older than it.
 * KEYS: entry, floor. ARGV: version, floor ttl ms. Returns 1 when an entry was removed.
 */
const INVALIDATE = `
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
local version = tonumber(ARGV[1])
if version > floor then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local cached = tonumber(string.match(current, '^(%d+):'))
if cached and cached >= version then return 0 end
redis.call('DEL', KEYS[1])
return 1`;

/** The floor outlives any reader still between its database read and its cache write by far. */
const MIN_FLOOR_TTL_MS = 3_600_000;

export interface CachedPost<T> {
  version: number;
  value: T;
}

type VersionedRedis = Redis & {
  postCacheFill(entry: string, floor: string, version: number, value: string, ttlMs: number): Promise<number>;
  postCacheInvalidate(entry: string, floor: string, version: number, ttlMs: number): Promise<number>;
};

/**
 * A versioned cache-aside for posts. Readers fill `post:{id}` with the version they read; the invalidator, on each
 * change, raises the key's version floor (`post:{id}:floor`) to the new version and deletes older entries. A fill
 * older than the floor is refused, which closes the classic race: a reader that missed, read the old row, and
 * writes it after the update's invalidation cannot leave a stale entry behind. The braces make both keys of a post
 * one Redis Cluster hash slot, so each script runs on one node.
 */
@Injectable()
export class PostCache {
  private readonly redis: VersionedRedis;
  readonly ttlMs: number;

  constructor(@Inject(REDIS) redis: Redis, @Inject(APP_CONFIG) config: RedisConfig) {
    this.ttlMs = config.POST_CACHE_TTL_SECONDS * 1000;
    redis.defineCommand('postCacheFill', { numberOfKeys: 2, lua: FILL });
    redis.defineCommand('postCacheInvalidate', { numberOfKeys: 2, lua: INVALIDATE });
    this.redis = redis as VersionedRedis;
  }

  static entryKey(id: string): string {
    return `post:{${id}}`;
  }

  static floorKey(id: string): string {
    return `post:{${id}}:floor`;
  }

  async get<T>(id: string): Promise<CachedPost<T> | undefined> {
    const raw = await this.redis.get(PostCache.entryKey(id));
    if (raw === null) return undefined;
    const colon = raw.indexOf(':');
    return { version: Number(raw.slice(0, colon)), value: JSON.parse(raw.slice(colon + 1)) as T };
  }

  /** Writes what a reader read from the database; false when a newer version was invalidated or cached meanwhile. */
  async fill<T>(id: string, version: number, value: T): Promise<boolean> {
    const written = await this.redis.postCacheFill(
      PostCache.entryKey(id),
      PostCache.floorKey(id),
      version,
      JSON.stringify(value),
      this.ttlMs,
    );
    return written === 1;
  }

  /** The post changed to `version` (or was deleted, with the version after its last): older entries go away. */
  async invalidate(id: string, version: number): Promise<boolean> {
    const removed = await this.redis.postCacheInvalidate(
      PostCache.entryKey(id),
      PostCache.floorKey(id),
      version,
      Math.max(this.ttlMs, MIN_FLOOR_TTL_MS),
    );
    return removed === 1;
  }
}
