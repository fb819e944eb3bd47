import { partitionKey } from './partition-progress';
import { BackoffPolicy, backoffDelay, timerDelay } from './backoff';

/** What the scheduler needs of a consumer: stop and restart fetching one partition. */
export interface PartitionControl {
  pause(topics: { topic: string; partitions: number[] }[]): void;
  resume(topics: { topic: string; partitions: number[] }[]): void;
}

/** A retry's wait from now, from a due time written by another clock: never negative, never past `maxMs`. */
export function clampRetryWait(waitMs: number, maxMs: number): number {
  if (!Number.isFinite(waitMs) || waitMs <= 0) return 0;
  return timerDelay(Math.min(waitMs, maxMs));
}

const keyOf = (topic: string, partition: number) => `${topic}:${partition}`;

/**
 * When each partition of a consumer may be fetched again. A partition is paused until a time and resumed by a timer
 * (never longer than a timer holds): how a retry topic waits for its head message to be due without a busy loop,
 * and how a partition whose message could not be set aside backs off — per partition, so one partition's trouble
 * does not lengthen another's wait.
 *
 * Pausing and resuming are safe in every state of the consumer: kafkajs throws from pause() and resume() while it
 * restarts itself or before run() ("Consumer group was not initialized"), and such a throw from a timer would end
 * the process. A failed call is logged and left to `rejoined()`, which re-applies the pauses still due after every
 * join (a new or restarted kafkajs consumer starts with nothing paused).
 */
export class PartitionScheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** The head message of each waiting retry partition and when it is due, by this process's clock. */
  private readonly heads = new Map<string, { offset: string; until: number }>();
  private readonly failures = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly control: () => PartitionControl | undefined,
    private readonly policy: BackoffPolicy,
    private readonly now: () => number = Date.now,
    private readonly onError: (what: string, error: unknown) => void = () => undefined,
  ) {}

  private apply(what: 'pause' | 'resume', topic: string, partition: number): void {
    const control = this.control();
    if (!control) return;
    try {
      control[what]([{ topic, partitions: [partition] }]);
    } catch (error) {
      this.onError(`${what} ${partitionKey(topic, partition)}`, error);
    }
  }

  /** After a join: the partitions whose wait is not over are paused again on the consumer that joined. */
  rejoined(): void {
    if (this.closed) return;
    for (const key of this.timers.keys()) {
      const at = key.lastIndexOf(':');
      this.apply('pause', key.slice(0, at), Number(key.slice(at + 1)));
    }
  }

  /** Stops fetching the partition until `until`; unresolved messages are fetched again after the resume. */
  pauseUntil(topic: string, partition: number, until: number): void {
    if (!this.control() || this.closed) return;
    const key = keyOf(topic, partition);
    clearTimeout(this.timers.get(key));
    this.apply('pause', topic, partition);
    const timer = setTimeout(
      () => {
        this.timers.delete(key);
        if (!this.closed) this.apply('resume', topic, partition);
      },
      Math.max(1, timerDelay(until - this.now())),
    );
    this.timers.set(key, timer);
  }

  /**
   * When a retry is due. `x-retry-at` comes from another host's clock and from the wire: the wait is clamped to the
   * policy's longest backoff, counted from when this process first saw the message at the head of its partition.
   */
  retryDueAt(topic: string, partition: number, offset: string, retryAt: number): number {
    const key = keyOf(topic, partition);
    const head = this.heads.get(key);
    if (head?.offset === offset) return head.until;
    const now = this.now();
    const until = now + clampRetryWait(retryAt - now, this.policy.maxMs);
    this.heads.set(key, { offset, until });
    return until;
  }

  /** The head retry of the partition ran: the next head is timed afresh. */
  retryTaken(topic: string, partition: number): void {
    this.heads.delete(keyOf(topic, partition));
  }

  /** A message of the partition could not be set aside: returns how long to wait before fetching it again. */
  setAsideFailed(topic: string, partition: number): number {
    const key = keyOf(topic, partition);
    const failures = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, failures);
    return backoffDelay(this.policy, failures);
  }

  settled(topic: string, partition: number): void {
    this.failures.delete(keyOf(topic, partition));
  }

  /** Partitions paused now, as `topic[partition]`. */
  pausedPartitions(): string[] {
    return [...this.timers.keys()].map((key) => {
      const at = key.lastIndexOf(':');
      return partitionKey(key.slice(0, at), Number(key.slice(at + 1)));
    });
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}

/** When a partition's handled offsets are committed: every `every` messages or `intervalMs`, and at the end. */
export class CommitCadence {
  private pending?: string;
  private count = 0;
  private last: number;

  constructor(
    private readonly every: number,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.last = now();
  }

  /** Records a handled offset; true when a commit is due now. */
  handled(offset: string): boolean {
    this.pending = offset;
    this.count += 1;
    return this.count >= this.every || this.now() - this.last >= this.intervalMs;
  }

  /** The offset to commit (the one after the last handled), or undefined when nothing is pending. */
  next(): string | undefined {
    return this.pending === undefined ? undefined : (BigInt(this.pending) + 1n).toString();
  }

  committed(): void {
    this.pending = undefined;
    this.count = 0;
    this.last = this.now();
  }
}
