import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { errorMessageOf } from './errors';
import { KAFKA } from './messaging.module';

/** A position in each partition of some topics: the offset of the next message, by topic, by partition. */
export type Positions = Record<string, number[]>;

/** What a topic partition holds now: its first offset still kept (retention) and the next offset to be written. */
export interface PartitionBounds {
  low: number;
  high: number;
}

export interface HistoryMessage {
  topic: string;
  partition: number;
  offset: number;
  message: KafkaMessage;
}

/**
 * Reads a topic's history straight from the broker, for a consumer that keeps no buffer of its own: the bounds of
 * each partition, and a range of offsets replayed in order per partition. A read is a short-lived consumer of its
 * own throw-away group that seeks to the start of the range and stops at its end; it commits nothing.
 */
@Injectable()
export class TopicHistory {
  private readonly log = new Logger(TopicHistory.name);

  constructor(@Inject(KAFKA) private readonly kafka: Kafka) {}

  async bounds(topics: readonly string[]): Promise<Record<string, PartitionBounds[]>> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const result: Record<string, PartitionBounds[]> = {};
      for (const topic of topics) {
        const offsets = await admin.fetchTopicOffsets(topic);
        const bounds: PartitionBounds[] = [];
        for (const o of offsets) bounds[o.partition] = { low: Number(o.low), high: Number(o.high) };
        result[topic] = bounds;
      }
      return result;
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * Delivers every message in [from, to) of each partition, in offset order per partition (partitions interleave),
   * then resolves. Aborting the signal stops the read and rejects.
   */
  async read(
    from: Positions,
    to: Positions,
    onMessage: (message: HistoryMessage) => void,
    options: { signal?: AbortSignal; timeoutMs?: number; groupPrefix: string },
  ): Promise<number> {
    const next = new Map<string, number>();
    const end = new Map<string, number>();
    for (const [topic, partitions] of Object.entries(to)) {
      partitions.forEach((high, partition) => {
        const start = from[topic]?.[partition] ?? high;
        if (start < high) {
          next.set(`${topic}/${partition}`, start);
          end.set(`${topic}/${partition}`, high);
        }
      });
    }
    if (next.size === 0) return 0;
    const topics = [...new Set([...next.keys()].map((key) => key.slice(0, key.lastIndexOf('/'))))];
    const consumer = this.kafka.consumer({
      groupId: `${options.groupPrefix}.history-${randomUUID()}`,
      sessionTimeout: 10_000,
      heartbeatInterval: 1000,
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
    });
    let delivered = 0;
    let settle!: { resolve: () => void; reject: (error: Error) => void };
    const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    const remaining = () => [...next.entries()].filter(([key, offset]) => offset < (end.get(key) ?? 0)).length;
    const onAbort = () => settle.reject(new Error('the history read was stopped'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => settle.reject(new Error(`the history read did not finish within ${options.timeoutMs ?? 30_000} ms`)),
      options.timeoutMs ?? 30_000,
    );
    try {
      await consumer.connect();
      await consumer.subscribe({ topics, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          const key = `${batch.topic}/${batch.partition}`;
          for (const message of batch.messages) {
            const offset = Number(message.offset);
            const expected = next.get(key);
            // Before the seek took effect: not part of this read.
            if (expected === undefined || offset < expected) continue;
            // Past the end of the range: the rest of it holds no message (a control record, a compacted one).
            if (offset >= (end.get(key) ?? 0)) {
              next.set(key, end.get(key) ?? offset);
              continue;
            }
            next.set(key, offset + 1);
            delivered += 1;
            onMessage({ topic: batch.topic, partition: batch.partition, offset, message });
          }
          if (remaining() === 0) settle.resolve();
          await Promise.resolve();
        },
      });
      for (const [key, offset] of next) {
        const slash = key.lastIndexOf('/');
        consumer.seek({ topic: key.slice(0, slash), partition: Number(key.slice(slash + 1)), offset: String(offset) });
      }
      await done;
      return delivered;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      await consumer.disconnect().catch((error: unknown) => {
        this.log.warn(`history reader did not disconnect cleanly: ${errorMessageOf(error)}`);
      });
    }
  }
}
