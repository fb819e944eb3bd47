import { Controller } from '@nestjs/common';
import type { EventOf } from '@app/contracts';
import { ConsumeContext, EventConsumer, HandleEvent } from '@app/messaging';
import { LivePositions } from './live-positions';
import { NotificationHub } from './notification-hub';

type Streamed =
  | 'post.created.v1'
  | 'post.updated.v1'
  | 'post.deleted.v1'
  | 'video.progress.v1'
  | 'video.processed.v1'
  | 'video.failed.v1'
  | 'email.sent.v1';

/**
 * The live feed: a per-instance group, so every notifier replica sees every event and serves its own clients. Every
 * join starts where the feed stands (LivePositions: the topics' ends at boot, then the last event delivered), so a
 * rejoin skips nothing; what a client missed while disconnected comes from the broker on resume.
 */
@EventConsumer({ group: 'notifier', kind: 'per-instance', positions: LivePositions })
@Controller()
export class LiveEventsConsumer {
  constructor(private readonly hub: NotificationHub) {}

  private forward(event: EventOf<Streamed>, context: ConsumeContext): Promise<void> {
    return this.hub.publish(event, {
      topic: context.topic,
      partition: context.partition,
      offset: Number(context.offset),
    });
  }

  @HandleEvent('post.created.v1')
  postCreated(event: EventOf<'post.created.v1'>, context: ConsumeContext): Promise<void> {
    return this.forward(event, context);
  }

  @HandleEvent('post.updated.v1')
  postUpdated(event: EventOf<'post.updated.v1'>, context: ConsumeContext): Promise<void> {
    return this.forward(event, context);
  }

  @HandleEvent('post.deleted.v1')
  postDeleted(event: EventOf<'post.deleted.v1'>, context: ConsumeContext): Promise<void> {
    return this.forward(event, context);
  }

  @HandleEvent('video.progress.v1')
  videoProgress(event: EventOf<'video.progress.v1'>, context: ConsumeContext): Promise<void> {
    return this.forward(event, context);
  }

  @HandleEvent('video.processed.v1')
  videoProcessed(event: EventOf<'video.processed.v1'>, context: ConsumeContext): Promise<void> {
    return this.forward(event, context);
  }

  @HandleEvent('video.failed.v1')
  videoFailed(event: EventOf<'video.failed.v1'>, context: ConsumeContext): Promise<void> {
    return this.forward(event, context);
  }

  @HandleEvent('email.sent.v1')
  emailSent(event: EventOf<'email.sent.v1'>, context: ConsumeContext): Promise<void> {
    return this.forward(event, context);
  }
}
