import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { errorClassOf, errorMessageOf } from '../errors';
import { isRebalancing } from '../kafka-errors';
import { CommitCadence, PartitionScheduler } from '../partition-scheduler';
import type { Outcome } from './message-pipeline';

export interface BatchRunnerSettings {
  commitEveryMessages: number;
  commitIntervalMs: number;
}

export interface BatchRunnerParts {
  /** Runs one message to its outcome; throws when a failed message could not be set aside. */
  handle(topic: string, partition: number, message: KafkaMessage, heartbeat: () => Promise<void>): Promise<Outcome>;
  scheduler: PartitionScheduler;
  /** False once the server closes. */
  running(): boolean;
  log: { warn(message: string): void };
  /** Waits between tries of a batch's last commit (a timer; a spec passes one of its own). */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * One consumer's partition batches: each partition's messages in order, stopping at one that must wait (its
 * partition paused until then), committing on a cadence and at the end of the batch. A batch stops handling at
 * once when its consumer is no longer the current one (replaced after a stall, or retired), when the partition was
 * revoked, or when a heartbeat learned that the group rebalances — then kafkajs rejoins as soon as every batch of
 * the fetch has returned, instead of after minutes of work a new replica would be waiting for.
 */
export class BatchRunner {
  /** Set when a heartbeat learned that the group is rebalancing; cleared on the next join. */
  private rebalanceSeen?: Error;
  private inFlight = 0;

  constructor(
    private readonly settings: BatchRunnerSettings,
    private readonly parts: BatchRunnerParts,
  ) {}

  /** Batches being handled now. */
  get batchesInFlight(): number {
    return this.inFlight;
  }

  /** The group was (re)joined: batches of the new generation run. */
  joined(): void {
    this.rebalanceSeen = undefined;
  }

  /** `current`: whether the consumer that fetched this batch is still the server's consumer. */
  async run(payload: EachBatchPayload, current: () => boolean): Promise<void> {
    this.inFlight += 1;
    try {
      await this.runBatch(payload, current);
    } finally {
      this.inFlight -= 1;
    }
  }

  private async runBatch(payload: EachBatchPayload, current: () => boolean): Promise<void> {
    const { batch } = payload;
    const { topic, partition } = batch;
    const { scheduler, log } = this.parts;
    const heartbeat = async () => {
      try {
        await payload.heartbeat();
      } catch (error) {
        if (isRebalancing(error)) this.rebalanceSeen ??= error instanceof Error ? error : new Error(String(error));
        throw error;
      }
    };
    const assigned = () => current() && payload.isRunning() && !payload.isStale();
    const cadence = new CommitCadence(this.settings.commitEveryMessages, this.settings.commitIntervalMs);
    const commit = async () => {
      const offset = cadence.next();
      if (offset === undefined) return;
      await payload.commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset }] }] });
      cadence.committed();
    };

    try {
      for (const message of batch.messages) {
        if (!assigned() || !this.parts.running() || this.rebalanceSeen !== undefined) break;
        let outcome: Outcome;
        try {
          outcome = await this.parts.handle(topic, partition, message, heartbeat);
          scheduler.settled(topic, partition);
        } catch (error) {
          // The retry or dead-letter publish failed (the broker away): keep the offset, try again shortly.
          const delay = scheduler.setAsideFailed(topic, partition);
          log.warn(
            `${topic}[${partition}]@${message.offset} could not be set aside (${errorClassOf(error)}: ${errorMessageOf(error)}); fetching it again in ${delay} ms`,
          );
          outcome = { kind: 'wait', until: Date.now() + delay };
        }
        if (outcome.kind === 'leave') break;
        if (outcome.kind === 'wait') {
          scheduler.pauseUntil(topic, partition, outcome.until);
          break;
        }
        // A replaced consumer's work stops here: its offsets are the new consumer's to resolve and commit.
        if (!current()) break;
        payload.resolveOffset(message.offset);
        if (cadence.handled(message.offset)) await commit();
        await heartbeat();
      }
    } finally {
      await this.lastCommit(commit, () => assigned() && this.parts.running(), `${topic}[${partition}]`);
    }
    // The rest of this fetch waits: kafkajs rejoins once every batch of it has returned, and refetches after.
    if (this.rebalanceSeen !== undefined) throw this.rebalanceSeen;
  }

  /**
   * The last commit of a batch is retried for a few seconds: right after a broker restart the group coordinator
   * may still be loading, and with no further message on the partition nothing would commit again — its lag would
   * stay up although everything was handled.
   */
  private async lastCommit(commit: () => Promise<void>, stillOurs: () => boolean, where: string): Promise<void> {
    const sleep = this.parts.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    for (let attempt = 1; ; attempt++) {
      try {
        await commit();
        return;
      } catch (error) {
        if (attempt >= 5 || !stillOurs()) {
          // Lost the partition in a rebalance, or still failing: the next owner or batch re-reads from the last
          // commit, and the inbox makes the redelivery harmless.
          this.parts.log.warn(`commit on ${where} failed: ${errorMessageOf(error)}`);
          return;
        }
        await sleep(250 * 2 ** (attempt - 1));
      }
    }
  }
}
