import { Module } from '@nestjs/common';
import { CacheModule } from '@app/cache';
import { cacheInvalidatorConfigSchema } from '@app/config';
import { defineApp } from '@app/runtime';
import { PostInvalidationConsumer } from './posts/post-invalidation.consumer';

@Module({
  // Redis is this app's whole job: readiness fails while it is unreachable.
  imports: [CacheModule.forApp({ name: 'cache-invalidator', required: true })],
  controllers: [PostInvalidationConsumer],
})
class AppModule {}

/** cache-invalidator: keeps the Redis post cache correct from the `posts` events. */
export const cacheInvalidatorApp = defineApp({
  name: 'cache-invalidator',
  schema: cacheInvalidatorConfigSchema,
  module: () => ({ module: AppModule }),
});
