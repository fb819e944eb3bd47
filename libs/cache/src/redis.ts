import { Redis } from 'ioredis';
import type { RedisConfig } from '@app/config';

export const REDIS = Symbol('REDIS');

/**
 * One Redis connection for the app. Commands never queue while Redis is away: they fail at once (or after
 * REDIS_COMMAND_TIMEOUT_MS), so a read falls back to the database and an invalidation goes to the retry topic
 * instead of waiting on a queue that could replay out of order. The connection keeps reconnecting in the background.
 */
export function createRedis(config: RedisConfig, connectionName: string): Redis {
  return new Redis(config.REDIS_URL, {
    connectionName,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: config.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: Math.max(config.REDIS_COMMAND_TIMEOUT_MS, 1000),
    retryStrategy: (times) => Math.min(100 * times, 2000),
    // A boot with Redis down still succeeds; readiness says so.
    lazyConnect: false,
  });
}
