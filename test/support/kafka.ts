import { randomUUID } from 'node:crypto';
import { Kafka, Producer } from 'kafkajs';
import { EventRecord, KafkaMonitor, toRecord } from '@app/messaging';
import { testKafka } from './broker';
import { waitFor } from './wait';

/**
 * Committed offsets of a group reached the high watermark of every partition of these topics: no lag, as
 * KafkaMonitor.groupLag counts it for /metrics and the console (a partition the group never committed on is drained
 * only when empty).
 */
export async function groupDrained(kafka: Kafka, groupId: string, topics: string[]): Promise<boolean> {
  const monitor = new KafkaMonitor(kafka);
  try {
    return (await monitor.groupLag(groupId, topics, true, 10_000)).every((row) => row.lag === 0);
  } finally {
    await monitor.close();
  }
}

export function waitForDrained(groupId: string, topics: string[], timeoutMs = 90_000): Promise<true> {
  const kafka = testKafka();
  return waitFor(`group ${groupId} to catch up on ${topics.join(', ')}`, () => groupDrained(kafka, groupId, topics), {
    timeoutMs,
    intervalMs: 250,
  });
}

export type StartOffsets = { partition: number; offset: string }[];

/**
 * Commits a group's offsets on a topic: by default at the current end, so a new group sees only what is published
 * from now on. Returns the offsets set. Retried, since partition leadership can still settle after a restart.
 */
export async function startGroupAtEnd(groupId: string, topic: string, at?: StartOffsets): Promise<StartOffsets> {
  return waitFor(`offsets of ${groupId} on ${topic}`, () => setGroupOffsets(groupId, topic, at), {
    timeoutMs: 60_000,
    intervalMs: 500,
  });
}

async function setGroupOffsets(groupId: string, topic: string, at?: StartOffsets): Promise<StartOffsets> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    const partitions =
      at ?? (await admin.fetchTopicOffsets(topic)).map((end) => ({ partition: end.partition, offset: end.high }));
    await admin.setOffsets({ groupId, topic, partitions });
    return partitions;
  } finally {
    await admin.disconnect();
  }
}

/** High watermarks of a topic now, by partition. */
export async function topicEnds(topic: string, kafka: Kafka = testKafka()): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((end) => [end.partition, BigInt(end.high)]));
  } finally {
    await admin.disconnect();
  }
}

export interface RawMessage {
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

/** Every message of a topic from offset 0 up to the given ends, read by a plain consumer. */
export async function readTopic(
  topic: string,
  ends: Map<number, bigint>,
  kafka: Kafka = testKafka(),
): Promise<RawMessage[]> {
  const consumer = kafka.consumer({ groupId: `e2e-reader-${randomUUID()}` });
  const pending = new Set([...ends].filter(([, end]) => end > 0n).map(([partition]) => partition));
  const messages: RawMessage[] = [];
  if (pending.size === 0) return messages;
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const done = new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: ({ partition, message }) => {
          const end = ends.get(partition) ?? 0n;
          if (BigInt(message.offset) < end) {
            const headers: Record<string, string> = {};
            for (const [name, value] of Object.entries(message.headers ?? {})) {
              if (value !== undefined) headers[name] = String(Array.isArray(value) ? value[0] : value);
            }
            messages.push({
              partition,
              offset: message.offset,
              key: message.key?.toString() ?? null,
              value: message.value?.toString() ?? null,
              headers,
            });
          }
          if (BigInt(message.offset) >= end - 1n) pending.delete(partition);
          if (pending.size === 0) resolve();
          return Promise.resolve();
        },
      });
    });
    await waitFor(`reading ${topic} to its end`, async () => {
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 200))]);
      return pending.size === 0;
    });
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

/** Publishes email.requested.v1 events straight to `emails`, as the relay would; returns them. */
export class EmailEvents {
  private producer?: Producer;

  async publish(count: number, prefix: string): Promise<EventRecord[]> {
    this.producer ??= testKafka().producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    const records = Array.from({ length: count }, (_, i) => {
      const userId = randomUUID();
      return toRecord(
        'email.requested.v1',
        { to: `${prefix}-${i}@example.com`, template: 'welcome', data: { username: `${prefix}-${i}` }, userId },
        { key: userId, source: 'e2e-tests' },
      );
    });
    for (let i = 0; i < records.length; i += 200) {
      await this.producer.send({ topic: 'emails', acks: -1, messages: records.slice(i, i + 200) });
    }
    return records;
  }

  async publishRaw(messages: { key: string; value: string }[]): Promise<void> {
    this.producer ??= testKafka().producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    await this.producer.send({ topic: 'emails', acks: -1, messages });
  }

  async close(): Promise<void> {
    await this.producer?.disconnect();
  }
}
