import { Module } from '@nestjs/common';
import { cacheInvalidatorConfigSchema } from '@app/config';
import { defineApp } from '@app/runtime';

/** No handlers yet: the app serves health and metrics and watches the cluster. */
@Module({})
class AppModule {}

/** cache-invalidator: cache invalidation on post events (not built yet). */
export const cacheInvalidatorApp = defineApp({
  name: 'cache-invalidator',
  schema: cacheInvalidatorConfigSchema,
  module: () => ({ module: AppModule }),
});
