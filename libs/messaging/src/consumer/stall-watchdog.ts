import type { Kafka } from 'kafkajs';
import { errorMessageOf } from '../errors';
import { KafkaMonitor } from '../kafka-monitor';
import { partitionKey, PartitionProgress } from '../partition-progress';

/** What the watchdog reads of the server it watches. */
export interface WatchedConsumer {
  /** Consuming, not closing and not being replaced: a silence may mean something. */
  consuming(): boolean;
  membershipState(): 'joined' | 'joining' | 'rebalancing' | 'disconnected' | 'stopped' | 'idle';
  batchesInFlight(): number;
  lastFetchAt(): number;
  pausedPartitions(): string[];
  progress: PartitionProgress;
  groupId: string;
  fromEarliest: boolean;
  /** Per-instance groups commit nothing: their lag says nothing, so only a silent fetch counts. */
  checksLag: boolean;
  replace(why: string): void;
}

/**
 * Replaces a stalled consumer: one that fetched nothing for the limit with nothing in hand (kafkajs can keep
 * waiting on a group coordinator that died with its broker), or one that fetches yet got no batch for a partition
 * it holds (not paused) for the limit while that partition has messages past the group's committed offset (kafkajs
 * can go on fetching from brokers that no longer lead the partition).
 */
export class StallWatchdog {
  private timer?: NodeJS.Timeout;
  private lagCheck?: KafkaMonitor;
  private checking = false;
  private closed = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly watched: WatchedConsumer,
    private readonly limitMs: number,
    private readonly log: { debug(message: string): void },
  ) {}

  start(): void {
    if (this.limitMs <= 0 || this.timer || this.closed) return;
    this.timer = setInterval(() => this.tick(Date.now()), Math.min(5000, Math.max(100, this.limitMs / 3)));
    this.timer.unref();
  }

  /** One look at the consumer (the timer's; a spec calls it with its own clock). */
  tick(now: number): void {
    const w = this.watched;
    const membership = w.membershipState();
    // Partitions wait for a batch only while the consumer holds them and is free to take one.
    const free = w.consuming() && membership === 'joined' && w.batchesInFlight() === 0;
    const overdue = w.progress.tick(now, !free, this.limitMs, new Set(w.pausedPartitions()));
    // In a rebalance a member waits in JoinGroup, fetching nothing, until every member rejoins (up to the
    // rebalance timeout).
    if (!w.consuming() || w.batchesInFlight() > 0 || membership === 'rebalancing') return;
    const silentMs = now - w.lastFetchAt();
    if (silentMs > this.limitMs) {
      w.replace(`no fetch for ${Math.round(silentMs / 1000)} s and nothing in hand`);
      return;
    }
    if (overdue.length > 0 && w.checksLag && !this.checking) void this.checkOverdue(overdue);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.lagCheck?.close();
  }

  /** Replaces the consumer when one of the partitions that got no batch for the limit has messages waiting. */
  private async checkOverdue(overdue: string[]): Promise<void> {
    const w = this.watched;
    this.checking = true;
    try {
      const before = new Map(overdue.map((key) => [key, w.progress.deliveries(key)]));
      const topics = [...new Set(overdue.map((key) => key.slice(0, key.lastIndexOf('['))))];
      this.lagCheck ??= new KafkaMonitor(this.kafka);
      const lag = await this.lagCheck.groupLag(w.groupId, topics, w.fromEarliest, 5000);
      const waiting = (key: string, highWatermark: string) =>
        // Messages past what the group committed and past what kafkajs fetched (a tail of transaction markers is
        // fetched, handed over empty and never committed), and nothing delivered since the check began.
        BigInt(highWatermark) > w.progress.fetchedUpTo(key) &&
        before.get(key) === w.progress.deliveries(key) &&
        w.progress.holds(key);
      const candidates = lag.filter(
        (row) => row.lag > 0 && waiting(partitionKey(row.topic, row.partition), row.highWatermark),
      );
      if (candidates.length === 0) return;
      // A message that landed between reading the committed offset and the end is fetched within a poll: give it one.
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000, this.limitMs / 4)));
      const stuck = candidates.find((row) => waiting(partitionKey(row.topic, row.partition), row.highWatermark));
      if (!stuck || this.closed || !w.consuming() || w.batchesInFlight() > 0) return;
      w.replace(
        `no batch for ${partitionKey(stuck.topic, stuck.partition)} in ${Math.round(this.limitMs / 1000)} s while ${stuck.lag} message(s) wait on it`,
      );
    } catch (error) {
      // A lag check that got no answer is no evidence either way; the next overdue partition asks again.
      this.log.debug(`lag check failed: ${errorMessageOf(error)}`);
    } finally {
      this.checking = false;
    }
  }
}
