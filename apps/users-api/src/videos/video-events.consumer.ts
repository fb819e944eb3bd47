import { Controller } from '@nestjs/common';
import type { EventOf } from '@app/contracts';
import { ConsumeContext, EventConsumer, HandleEvent } from '@app/messaging';
import { VideosService } from './videos.service';

/**
 * Results of the video processors, in users-api's own durable group. Each update commits with its inbox row, so
 * a redelivered event changes nothing; late or reordered ones cannot move progress back or leave a final state.
 */
@EventConsumer({ group: 'users-api', inbox: 'transactional' })
@Controller()
export class VideoEventsConsumer {
  constructor(private readonly videos: VideosService) {}

  @HandleEvent('video.progress.v1')
  async onProgress(event: EventOf<'video.progress.v1'>, context: ConsumeContext): Promise<void> {
    await this.videos.progressed(context.transaction!, event.data.videoId, event.data.progress, event.data.attempt);
  }

  @HandleEvent('video.processed.v1')
  async onProcessed(event: EventOf<'video.processed.v1'>, context: ConsumeContext): Promise<void> {
    await this.videos.processed(context.transaction!, event.data.videoId, event.data);
  }

  @HandleEvent('video.failed.v1')
  async onFailed(event: EventOf<'video.failed.v1'>, context: ConsumeContext): Promise<void> {
    await this.videos.failed(context.transaction!, event.data.videoId, event.data.reason, event.data.attempt);
  }
}
