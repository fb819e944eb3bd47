import { Injectable } from '@nestjs/common';
import { Positions, StartPositions, TopicHistory } from '@app/messaging';
import { STREAM_TOPICS } from './positions';

/**
 * Where this replica's live feed stands: the next offset it will deliver, per partition of the streamed topics. Read
 * from the topics' ends once at boot, before the consumer first joins and before any stream is served, then moved on
 * by every event the feed delivers. As the consumer's StartPositions, every (re)join of the per-instance group —
 * boot, a crash restart, a stall replacement, a rejoin after a freeze past the session — starts each partition
 * exactly here, so nothing written while the consumer was away is skipped.
 */
@Injectable()
export class LivePositions implements StartPositions {
  private live?: Positions;
  private loading?: Promise<Positions>;

  constructor(private readonly history: TopicHistory) {}

  async ready(): Promise<void> {
    await this.current();
  }

  /** The positions, once known; the first call reads the topics' ends (a failed read is tried again by the next). */
  current(): Promise<Positions> {
    if (this.live) return Promise.resolve(this.live);
    this.loading ??= this.history.bounds(STREAM_TOPICS).then(
      (bounds) => {
        const live: Positions = {};
        for (const topic of STREAM_TOPICS) live[topic] = bounds[topic].map(({ high }) => high);
        this.live = live;
        return live;
      },
      (error: unknown) => {
        this.loading = undefined;
        throw error;
      },
    );
    return this.loading;
  }

  startOffset(topic: string, partition: number): string | undefined {
    const partitions = this.live?.[topic];
    if (!partitions) return undefined;
    // A partition added since boot holds only what was written since: all of it is new to the feed.
    return String(partitions[partition] ?? 0);
  }

  /** The next offset the feed expects on the partition, or undefined for a topic it does not stream. */
  next(topic: string, partition: number): number | undefined {
    const partitions = this.live?.[topic];
    return partitions ? (partitions[partition] ?? 0) : undefined;
  }

  /** The feed delivered `offset`: it goes on from the one after (never backwards). */
  passed(topic: string, partition: number, offset: number): void {
    const partitions = this.live?.[topic];
    if (partitions) partitions[partition] = Math.max(partitions[partition] ?? 0, offset + 1);
  }
}
