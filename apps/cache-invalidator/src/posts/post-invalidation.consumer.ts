import { Controller, Logger } from '@nestjs/common';
import { PostCache } from '@app/cache';
import type { CacheInvalidatorConfig } from '@app/config';
import type { EventOf } from '@app/contracts';
import { EventConsumer, HandleEvent, RetriableError, errorMessageOf } from '@app/messaging';

/**
 * Keeps the post cache correct: each update or deletion raises the post's version floor and removes older entries.
 * Idempotent and order-tolerant by construction (the floor only rises), so no inbox: a redelivered or late event
 * changes nothing. Redis unreachable → the lib's retry topic, and the partition goes on meanwhile.
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
      throw new RetriableError(`Redis did not take the invalidation of post ${postId}: ${errorMessageOf(error)}`, {
        cause: error,
      });
    }
    this.logger.debug(`post ${postId} ${why} (version ${version}): ${removed ? 'entry removed' : 'nothing cached'}`);
  }
}
