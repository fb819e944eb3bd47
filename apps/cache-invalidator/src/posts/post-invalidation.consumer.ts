import { Controller, Logger } from '@nestjs/common';
import { isRedisUnavailable, PostCache } from '@app/cache';
import type { CacheInvalidatorConfig } from '@app/config';
import type { EventOf } from '@app/contracts';
import { EventConsumer, HandleEvent, RetriableError, UnavailableError, errorMessageOf } from '@app/messaging';

/**
 * Keeps the post cache correct: each update or deletion raises the post's version floor and removes older entries.
 * Idempotent and order-tolerant by construction (the floor only rises), so no inbox: a redelivered or late event
 * changes nothing. Redis unreachable (or loading, or read-only) → retried through the lib's retry topic for as long as
 * the retry deadline allows, using up no attempt: an outage of any length dead-letters nothing, and the partition
 * goes on meanwhile. Any other failure is an ordinary retriable error, with the ordinary attempt budget.
 */
@EventConsumer<CacheInvalidatorConfig>({
  group: (config) => config.CACHE_INVALIDATOR_GROUP,
  inbox: 'none',
})
@Controller()
export class PostInvalidationConsumer {
  private readonly logger = new Logger(PostInvalidationConsumer.name);

  constructor(private readonly cache: PostCache) {}

  @HandleEvent('post.updated.v1')
  onUpdated(event: EventOf<'post.updated.v1'>): Promise<void> {
    return this.invalidate(event.data.postId, event.data.version, 'updated');
  }

  @HandleEvent('post.deleted.v1')
  onDeleted(event: EventOf<'post.deleted.v1'>): Promise<void> {
    return this.invalidate(event.data.postId, event.data.version, 'deleted');
  }

  private async invalidate(postId: string, version: number, why: string): Promise<void> {
    let removed: boolean;
    try {
      removed = await this.cache.invalidate(postId, version);
    } catch (error) {
      const message = `Redis did not take the invalidation of post ${postId}: ${errorMessageOf(error)}`;
      if (isRedisUnavailable(error)) throw new UnavailableError(message, { cause: error });
      throw new RetriableError(message, { cause: error });
    }
    this.logger.debug(`post ${postId} ${why} (version ${version}): ${removed ? 'entry removed' : 'nothing cached'}`);
  }
}
