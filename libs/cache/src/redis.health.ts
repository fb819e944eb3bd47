import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { errorMessageOf, withDeadline } from '@app/messaging';
import { ReadinessContributor, ReadinessReport, RuntimeContributor } from '@app/runtime';
import { REDIS } from './redis';

export const REDIS_REQUIRED = Symbol('REDIS_REQUIRED');

/**
 * Redis in `/health/ready`. Where Redis is only a cache (users-api) an outage is `degraded`: reads fall back to the
 * database. Where it is the app's whole job (the cache-invalidator) it is `down`.
 */
@RuntimeContributor()
@Injectable()
export class RedisHealth implements ReadinessContributor {
  readonly readinessKey = 'redis';

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(REDIS_REQUIRED) private readonly required: boolean,
  ) {}

  async readiness(): Promise<ReadinessReport> {
    try {
      await withDeadline('Redis PING', 1000, this.redis.ping());
      return { status: 'up' };
    } catch (error) {
      return {
        status: this.required ? 'down' : 'degraded',
        connection: this.redis.status,
        error: errorMessageOf(error),
        ...(this.required ? {} : { effect: 'reads bypass the cache and go to the database' }),
      };
    }
  }
}
