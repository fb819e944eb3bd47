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

  /**
   * The owner deleted the video: after its `video.submitted.v1` (same key, same partition), so its job on the main
   * topic is over by now. Records the deletion (a retry of the job does not run, a run elsewhere discards its result)
   * and removes the upload and the renditions. Idempotent: a second delivery removes nothing more.
   */
  @HandleEvent('video.deleted.v1')
  remove(event: EventOf<'video.deleted.v1'>): Promise<void> {
    return this.processor.remove(event.data);
  }
}

/**
 * Deletions as they are published, on every replica (a group of each process, from the latest offset), not queued
 * behind the jobs of their partition: the replica running the deleted video's job stops it at once. What this feed
 * misses (a replica that was down) the work queue's own handler above still does.
 */
@EventConsumer<VideoProcessorConfig>({
  group: (config) => `${config.VIDEO_CONSUMER_GROUP}-deletions`,
  kind: 'per-instance',
})
@Controller()
export class VideoDeletionsConsumer {
  constructor(private readonly processor: VideoProcessorService) {}

  @HandleEvent('video.deleted.v1')
  stop(event: EventOf<'video.deleted.v1'>): Promise<void> {
    return this.processor.stop(event.data.videoId);
  }
}
