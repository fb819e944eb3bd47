import { Module } from '@nestjs/common';
import { videoProcessorConfigSchema } from '@app/config';
import { DatabaseModule } from '@app/database';
import { MediaModule } from '@app/media';
import { defineApp } from '@app/runtime';
import { VideoDeletionsConsumer, VideoJobsConsumer } from './jobs/video-jobs.consumer';
import { VideoProcessorService } from './jobs/video-processor.service';
import { Claims1764200000000 } from './migrations/1764200000000-claims';
import { ClaimsPruning1764300000000 } from './migrations/1764300000000-claims-pruning';
import { DeletedVideos1764400000000 } from './migrations/1764400000000-deleted-videos';
import { SCHEMA } from './schema';

@Module({
  imports: [
    DatabaseModule.forApp({
      schema: SCHEMA,
      entities: [],
      migrations: [Claims1764200000000, ClaimsPruning1764300000000, DeletedVideos1764400000000],
      applicationName: 'video-processor',
    }),
    MediaModule.forApp(),
  ],
  controllers: [VideoJobsConsumer, VideoDeletionsConsumer],
  providers: [VideoProcessorService],
})
class AppModule {}

/** video-processor: the work queue of video jobs (ffprobe, thumbnail, H.264 preview) on competing replicas. */
export const videoProcessorApp = defineApp({
  name: 'video-processor',
  schema: videoProcessorConfigSchema,
  module: () => ({ module: AppModule }),
});
