/** A partition a consumer holds, as `topic[partition]` (the same key PartitionScheduler uses). */
export const partitionKey = (topic: string, partition: number): string => `${topic}[${partition}]`;

/**
 * How long each partition a consumer holds has gone without a batch of messages while the consumer was free to take
 * one. A consumer that keeps fetching can still stop getting one partition (kafkajs fetches each partition from the
 * broker its metadata names as the leader; after leadership moved while the cluster lost its quorum, that can be a
 * broker it no longer fetches from, until its metadata expires minutes later). Idle time only counts while no batch
 * is being handled: a long job on one partition keeps the others waiting by design, not by a fault.
 */
export class PartitionProgress {
  private readonly idleMs = new Map<string, number>();
  private readonly batches = new Map<string, number>();
  private readonly fetchedTo = new Map<string, bigint>();
  private lastTick?: number;

  /** A new assignment: the held partitions start from zero, the others are forgotten. */
  assigned(assignment: Record<string, number[]>, now: number): void {
    this.idleMs.clear();
    this.fetchedTo.clear();
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) this.idleMs.set(partitionKey(topic, partition), 0);
    }
    this.lastTick = now;
  }

  /** A batch with messages arrived for the partition. */
  delivered(topic: string, partition: number): void {
    const key = partitionKey(topic, partition);
    if (this.idleMs.has(key)) this.idleMs.set(key, 0);
    this.batches.set(key, this.deliveries(key) + 1);
  }

  /** Batches with messages the partition has had so far: a check that took a while compares it before and after. */
  deliveries(key: string): number {
    return this.batches.get(key) ?? 0;
  }

  /**
   * kafkajs fetched the partition up to `next` (exclusive): also batches it hands over with no message (only
   * transaction markers, or aborted records), whose offsets the group never commits.
   */
  fetched(topic: string, partition: number, next: bigint): void {
    const key = partitionKey(topic, partition);
    if (next > (this.fetchedTo.get(key) ?? -1n)) this.fetchedTo.set(key, next);
  }

  /** How far the partition was fetched (exclusive), or -1 when nothing came from it yet. */
  fetchedUpTo(key: string): bigint {
    return this.fetchedTo.get(key) ?? -1n;
  }

  /** Whether the consumer holds the partition (per its last assignment). */
  holds(key: string): boolean {
    return this.idleMs.has(key);
  }

  /**
   * Advances the clocks by the time since the last tick when the consumer was free (`busy` false); returns the held
   * partitions idle longer than `limitMs`, except the `paused` ones, and starts their clocks again so each is
   * reported at most once per limit.
   */
  tick(now: number, busy: boolean, limitMs: number, paused: ReadonlySet<string>): string[] {
    const elapsed = this.lastTick === undefined ? 0 : now - this.lastTick;
    this.lastTick = now;
    const overdue: string[] = [];
    for (const [key, idle] of this.idleMs) {
      if (paused.has(key)) {
        this.idleMs.set(key, 0);
        continue;
      }
      const next = busy ? idle : idle + elapsed;
      if (next > limitMs) {
        overdue.push(key);
        this.idleMs.set(key, 0);
      } else {
        this.idleMs.set(key, next);
      }
    }
    return overdue;
  }
}
