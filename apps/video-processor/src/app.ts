import { Module } from '@nestjs/common';
import { videoProcessorConfigSchema } from '@app/config';
import { defineApp } from '@app/runtime';

/** No handlers yet: the app serves health and metrics and watches the cluster. */
@Module({})
class AppModule {}

/** video-processor: video jobs (not built yet). */
export const videoProcessorApp = defineApp({
  name: 'video-processor',
  schema: videoProcessorConfigSchema,
  module: () => ({ module: AppModule }),
});
