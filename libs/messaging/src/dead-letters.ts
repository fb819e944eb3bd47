import { randomUUID } from 'node:crypto';
import type { IHeaders, Kafka } from 'kafkajs';
import { deadLetterTopicOf, FailureHeaders, headerString, ownHeaders, retryTopicOf } from './failure-headers';
import { EventProducer } from './producer';

/** A purge named a partition the dead-letter topic does not have: the caller's mistake, nothing was deleted. */
export class UnknownPartitionError extends Error {
  override readonly name = 'UnknownPartitionError';
}

/** One message on a consumer group's dead-letter topic, with what its headers say about the failure. */
export interface DeadLetter {
  partition: number;
  offset: string;
  timestamp: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  eventId: string | null;
  eventType: string | null;
  originalTopic: string | null;
  originalPartition: number | null;
  originalOffset: string | null;
  attempts: number | null;
  reason: string | null;
  errorClass: string | null;
  errorMessage: string | null;
  failedAt: string | null;
}

export interface DeadLetterFilter {
  type?: string;
  id?: string;
  partition?: number;
  offset?: string;
}

function stringHeaders(headers: IHeaders | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const name of Object.keys(headers ?? {})) {
    const value = headerString(headers, name);
    if (value !== undefined) result[name] = value;
  }
  return result;
}

/** The envelope's id and type: from the CloudEvents headers, else from the value when it is JSON. */
function identify(headers: Record<string, string>, value: Buffer | null): { id: string | null; type: string | null } {
  if (headers.ce_id && headers.ce_type) return { id: headers.ce_id, type: headers.ce_type };
  try {
    const parsed = JSON.parse(value?.toString('utf8') ?? '') as { id?: unknown; type?: unknown };
    return {
      id: typeof parsed.id === 'string' ? parsed.id : null,
      type: typeof parsed.type === 'string' ? parsed.type : null,
    };
  } catch {
    return { id: null, type: null };
  }
}

function toDeadLetter(
  partition: number,
  message: { offset: string; timestamp: string; key: Buffer | null; value: Buffer | null; headers?: IHeaders },
): DeadLetter {
  const headers = stringHeaders(message.headers);
  const { id, type } = identify(headers, message.value);
  const number = (name: string) => (headers[name] !== undefined ? Number(headers[name]) : null);
  const failedAt = number(FailureHeaders.FailedAt);
  return {
    partition,
    offset: message.offset,
    timestamp: message.timestamp,
    key: message.key?.toString('utf8') ?? null,
    value: message.value,
    headers,
    eventId: id,
    eventType: type,
    originalTopic: headers[FailureHeaders.OriginalTopic] ?? null,
    originalPartition: number(FailureHeaders.OriginalPartition),
    originalOffset: headers[FailureHeaders.OriginalOffset] ?? null,
    attempts: number(FailureHeaders.Attempts),
    reason: headers[FailureHeaders.Reason] ?? null,
    errorClass: headers[FailureHeaders.ErrorClass] ?? null,
    errorMessage: headers[FailureHeaders.ErrorMessage] ?? null,
    failedAt: failedAt === null ? null : new Date(failedAt).toISOString(),
  };
}

function matches(letter: DeadLetter, filter: DeadLetterFilter): boolean {
  return (
    (filter.type === undefined || letter.eventType === filter.type) &&
    (filter.id === undefined || letter.eventId === filter.id) &&
    (filter.partition === undefined || letter.partition === filter.partition) &&
    (filter.offset === undefined || letter.offset === filter.offset)
  );
}

/**
 * Reads, replays and purges a consumer group's dead-letter topic. Replay republishes the exact key, value and own
 * headers, with fresh retry headers, into the group's own retry topic; the group's inbox skips an event that was in
 * fact handled before.
 */
export class DeadLetters {
  readonly topic: string;

  constructor(
    private readonly kafka: Kafka,
    private readonly consumerGroup: string,
  ) {
    this.topic = deadLetterTopicOf(consumerGroup);
  }

  /** Every dead letter present now (from the low to the high watermark of each partition) that matches. */
  async list(filter: DeadLetterFilter = {}, timeoutMs = 30_000): Promise<DeadLetter[]> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = await admin.listTopics();
      if (!existing.includes(this.topic)) return [];
      const watermarks = await admin.fetchTopicOffsets(this.topic);
      const ends = new Map(watermarks.map((w) => [w.partition, { low: BigInt(w.low), high: BigInt(w.high) }]));
      const pending = new Set(watermarks.filter((w) => BigInt(w.high) > BigInt(w.low)).map((w) => w.partition));
      if (pending.size === 0) return [];
      const letters: DeadLetter[] = [];
      // A throw-away group: reading never moves the offsets of anything else.
      const groupId = `dead-letter-reader-${randomUUID()}`;
      const consumer = this.kafka.consumer({ groupId, allowAutoTopicCreation: false });
      await consumer.connect();
      try {
        await consumer.subscribe({ topic: this.topic, fromBeginning: true });
        const done = new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`reading ${this.topic} took longer than ${timeoutMs} ms`)),
            timeoutMs,
          );
          consumer
            .run({
              autoCommit: false,
              eachMessage: ({ partition, message }) => {
                const end = ends.get(partition);
                if (end && BigInt(message.offset) < end.high) letters.push(toDeadLetter(partition, message));
                if (end && BigInt(message.offset) >= end.high - 1n) pending.delete(partition);
                if (pending.size === 0) {
                  clearTimeout(timer);
                  resolve();
                }
                return Promise.resolve();
              },
            })
            .catch(reject);
        });
        await done;
      } finally {
        await consumer.disconnect();
        await admin.deleteGroups([groupId]).catch(() => undefined);
      }
      return letters
        .filter((letter) => matches(letter, filter))
        .sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
    } finally {
      await admin.disconnect();
    }
  }

  /** Replays the matching dead letters into the group's retry topic, in order; returns what was replayed. */
  async replay(
    filter: DeadLetterFilter = {},
    also: (letter: DeadLetter) => boolean = () => true,
  ): Promise<DeadLetter[]> {
    const letters = (await this.list(filter)).filter((letter) => replayable(letter) && also(letter));
    await this.republish(letters);
    return letters;
  }

  /**
   * Replays the matching dead letters, then deletes the replayed ones that no other letter precedes in their
   * partition (Kafka deletes records only up to an offset): replaying the oldest, or all, empties the list of them;
   * a letter replayed from the middle stays listed until those before it go. Returns what was replayed and how many
   * left the topic. A replayed event that was in fact handled before is skipped by the group's inbox.
   */
  async replayAndRemove(filter: DeadLetterFilter = {}): Promise<{ replayed: DeadLetter[]; removed: number }> {
    const all = await this.list();
    const replayed = all.filter((letter) => matches(letter, filter) && replayable(letter));
    await this.republish(replayed);
    const through = replayedPrefix(all, new Set(replayed));
    const removed = through.size > 0 ? await this.purge(through) : 0;
    return { replayed, removed };
  }

  /**
   * Into the group's own retry topic, due now, as a fresh first attempt: only this group runs the event again.
   * Republished to the original topic, every other group of that topic would get the old event again too, after
   * newer ones.
   */
  private async republish(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    const producer = new EventProducer(this.kafka);
    const now = String(Date.now());
    try {
      await producer.send(
        letters.map((letter) => ({
          topic: retryTopicOf(this.consumerGroup),
          key: letter.key,
          value: letter.value,
          headers: {
            ...ownHeaders(letter.headers),
            [FailureHeaders.OriginalTopic]: letter.originalTopic as string,
            [FailureHeaders.OriginalPartition]: String(letter.originalPartition ?? letter.partition),
            [FailureHeaders.OriginalOffset]: letter.originalOffset ?? letter.offset,
            [FailureHeaders.OriginalTimestamp]: letter.headers[FailureHeaders.OriginalTimestamp] ?? letter.timestamp,
            [FailureHeaders.ConsumerGroup]: this.consumerGroup,
            [FailureHeaders.Attempts]: '0',
            [FailureHeaders.FirstFailedAt]: now,
            [FailureHeaders.RetryAt]: now,
            [FailureHeaders.Elapsed]: '0',
            [FailureHeaders.ReplayedFrom]: `${this.topic}/${letter.partition}/${letter.offset}`,
          },
        })),
      );
    } finally {
      await producer.disconnect();
    }
  }

  /**
   * Deletes dead letters up to and including the given offset of each partition (Kafka deletes up to an offset,
   * never one record by one). Only what was seen: a dead letter that arrived after the caller listed is kept.
   * Without `through`, deletes what this call reads now, so nothing unseen by the caller of `purge` goes.
   * Returns how many were deleted.
   */
  async purge(through?: Map<number, string>): Promise<number> {
    const limits = through ?? lastOffsets(await this.list());
    if (limits.size === 0) return 0;
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      if (!(await admin.listTopics()).includes(this.topic)) return 0;
      const watermarks = new Map(
        (await admin.fetchTopicOffsets(this.topic)).map((w) => [
          w.partition,
          { low: BigInt(w.low), high: BigInt(w.high) },
        ]),
      );
      const partitions: { partition: number; offset: string }[] = [];
      let count = 0n;
      for (const [partition, last] of limits) {
        const mark = watermarks.get(partition);
        if (!mark) throw new UnknownPartitionError(`${this.topic} has no partition ${partition}`);
        // Exclusive end: everything before it goes. Never past what exists now.
        const end = BigInt(last) + 1n < mark.high ? BigInt(last) + 1n : mark.high;
        if (end > mark.low) {
          partitions.push({ partition, offset: end.toString() });
          count += end - mark.low;
        }
      }
      if (partitions.length > 0) await admin.deleteTopicRecords({ topic: this.topic, partitions });
      return Number(count);
    } finally {
      await admin.disconnect();
    }
  }
}

/**
 * Per partition, the last offset of the run of replayed letters that starts at the partition's oldest letter: what
 * can be deleted without deleting a letter that was not replayed. `all` is every letter, in partition and offset order.
 */
export function replayedPrefix(all: readonly DeadLetter[], replayed: ReadonlySet<DeadLetter>): Map<number, string> {
  const through = new Map<number, string>();
  const blocked = new Set<number>();
  for (const letter of all) {
    if (blocked.has(letter.partition)) continue;
    if (replayed.has(letter)) through.set(letter.partition, letter.offset);
    else blocked.add(letter.partition);
  }
  return through;
}

/** The last offset per partition among these dead letters: what a purge of exactly them deletes up to. */
export function lastOffsets(letters: readonly DeadLetter[]): Map<number, string> {
  const result = new Map<number, string>();
  for (const letter of letters) {
    const seen = result.get(letter.partition);
    if (seen === undefined || BigInt(letter.offset) > BigInt(seen)) result.set(letter.partition, letter.offset);
  }
  return result;
}

/** `0/4,2/7` → partition 0 through offset 4, partition 2 through offset 7 (as `list` prints them). */
export function parseThrough(text: string): Map<number, string> {
  const result = new Map<number, string>();
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const match = /^(\d+)\/(\d+)$/.exec(part);
    if (!match) throw new Error(`--through takes <partition>/<offset>[,…] as list prints them, got '${part}'`);
    result.set(Number(match[1]), match[2]);
  }
  if (result.size === 0) throw new Error('--through names no partition/offset');
  return result;
}

export function formatThrough(offsets: Map<number, string>): string {
  return [...offsets].map(([partition, offset]) => `${partition}/${offset}`).join(',');
}

/**
 * A letter can be replayed when it says where it came from and holds its whole value: a stub (its value cut because
 * the broker took it in no fuller form) would only fail again; its whole message is at its original offset.
 */
export function replayable(letter: DeadLetter): boolean {
  return letter.originalTopic !== null && letter.headers[FailureHeaders.ValueCut] === undefined;
}
