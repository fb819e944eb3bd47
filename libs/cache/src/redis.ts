import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import type { RedisConfig } from '@app/config';

export const REDIS = Symbol('REDIS');

/**
 * One Redis connection for the app. Commands never queue while Redis is away: they fail at once (or after
 * REDIS_COMMAND_TIMEOUT_MS), so a read falls back to the database and an invalidation goes to the retry topic
 * instead of waiting on a queue that could replay out of order. The connection keeps reconnecting in the background.
 */
export function createRedis(config: RedisConfig, connectionName: string): Redis {
  const redis = new Redis(config.REDIS_URL, {
    connectionName,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // A command in flight when the connection drops fails; it is never sent again on the next connection.
    autoResendUnfulfilledCommands: false,
    commandTimeout: config.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: Math.max(config.REDIS_COMMAND_TIMEOUT_MS, 1000),
    retryStrategy: (times) => Math.min(100 * times, 2000),
    // A boot with Redis down still succeeds; readiness says so.
    lazyConnect: false,
  });
  // Without a listener ioredis prints each failed reconnect to stderr itself. One line when Redis goes away and one
  // when it is back; readiness and the failing commands say the rest.
  const log = new Logger('Redis');
  let down = false;
  redis.on('error', (error: Error) => {
    if (down) return;
    down = true;
    log.warn(`Redis unreachable (${error.message}); reconnecting in the background`);
  });
  redis.on('ready', () => {
    if (down) log.log('Redis reachable again');
    down = false;
  });
  return redis;
}
