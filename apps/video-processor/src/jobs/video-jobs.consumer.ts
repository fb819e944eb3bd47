import { Controller } from '@nestjs/common';
import type { VideoProcessorConfig } from '@app/config';
import type { EventOf } from '@app/contracts';
import { ConsumeContext, EventConsumer, HandleEvent } from '@app/messaging';
import { SCHEMA } from '../schema';
import { VideoProcessorService } from './video-processor.service';

/**
 * The work queue: one durable group shared by every processor replica, one job at a time per replica, each job
 * claimed with a lease (no transaction open while ffmpeg runs). A job whose claim completed is skipped; a dead
 * replica's job runs again once its lease has expired.
 */
@EventConsumer<VideoProcessorConfig>({
  group: (config) => config.VIDEO_CONSUMER_GROUP,
  inbox: 'claim',
  claim: { schema: SCHEMA, leaseMs: (config) => config.VIDEO_LEASE_MS },
  concurrency: 1,
})
@Controller()
export class VideoJobsConsumer {
  constructor(private readonly processor: VideoProcessorService) {}

  @HandleEvent('video.submitted.v1')
  process(event: EventOf<'video.submitted.v1'>, context: ConsumeContext): Promise<void> {
    return this.processor.process(event, context);
  }
}
