import { DynamicModule, Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG, RedisConfig } from '@app/config';
import { PostCache } from './post-cache';
import { createRedis, REDIS } from './redis';
import { REDIS_REQUIRED, RedisHealth } from './redis.health';

/** Redis and the post cache for an app; `required` decides whether an outage fails readiness or degrades it. */
@Global()
@Module({})
export class CacheModule implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: Redis) {}

  static forApp(options: { name: string; required: boolean }): DynamicModule {
    return {
      module: CacheModule,
      providers: [
        {
          provide: REDIS,
          inject: [APP_CONFIG],
          useFactory: (config: RedisConfig) => createRedis(config, options.name),
        },
        { provide: REDIS_REQUIRED, useValue: options.required },
        PostCache,
        RedisHealth,
      ],
      exports: [REDIS, PostCache],
    };
  }

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }
}
