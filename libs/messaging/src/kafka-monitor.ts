import { Logger } from '@nestjs/common';
import type { Admin, Kafka } from 'kafkajs';
import { errorMessageOf } from './errors';

export interface BrokerStatus {
  /** Whether the last probe reached the cluster within its deadline; false until the first one did. */
  reachable: boolean;
  /** When `reachable` last changed (or the monitor started). */
  since: string;
  brokers?: number;
  controller?: number | null;
  error?: string;
}

export interface PartitionLag {
  group: string;
  topic: string;
  partition: number;
  /** The group's committed offset, or null when it has none on this partition. */
  committed: string | null;
  highWatermark: string;
  /**
   * Messages between the committed offset (or the low watermark, when records below it are gone or nothing is
   * committed) and the high watermark.
   */
  lag: number;
}

/** A topic's partitions with their low and high watermarks (records below `low` are gone). */
export interface TopicWatermarks {
  topic: string;
  partitions: { partition: number; low: string; high: string }[];
}

/** `work`, or a rejection naming `what` after `ms`; the work itself goes on, nobody waits for it. */
export function withDeadline<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} got no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/**
 * The app's view of the cluster for health and metrics, on one admin connection: a probe every `intervalMs`
 * (`describeCluster`, bounded by the interval) so readiness follows the broker within seconds, and group lag on
 * demand (committed offsets against high watermarks, as the broker sees them for the whole group — a replica
 * reports the lag of partitions other replicas hold too).
 */
export class KafkaMonitor {
  private readonly log = new Logger(KafkaMonitor.name);
  private admin?: Admin;
  private timer?: NodeJS.Timeout;
  private inFlight = false;
  private closed = false;
  private failures = 0;
  private status: BrokerStatus = { reachable: false, since: new Date().toISOString(), error: 'not probed yet' };

  /**
   * @param intervalMs how often to probe
   * @param deadlineMs how long one probe may take (connecting included): at least the connect timeout, so a slow
   *   first TLS/SASL handshake is not a lost cluster
   * @param failuresToDown consecutive failed probes before the cluster counts as unreachable (one slow answer is not
   *   an outage); before the first success it is unreachable anyway
   */
  constructor(
    private readonly kafka: Kafka,
    private readonly intervalMs = 2000,
    private readonly deadlineMs = Math.max(intervalMs, 3000),
    private readonly failuresToDown = 2,
  ) {}

  private adminClient(): Admin {
    if (this.closed) throw new Error('the Kafka monitor is closed');
    this.admin ??= this.kafka.admin({ retry: { retries: 0 } });
    return this.admin;
  }

  start(): void {
    if (this.timer) return;
    void this.probe();
    this.timer = setInterval(() => void this.probe(), this.intervalMs);
    this.timer.unref();
  }

  brokerStatus(): BrokerStatus {
    return { ...this.status };
  }

  /** One probe, bounded by the deadline; none is started while another still waits. */
  async probe(): Promise<BrokerStatus> {
    if (this.inFlight || this.closed) return this.brokerStatus();
    this.inFlight = true;
    try {
      const admin = this.adminClient();
      const cluster = await withDeadline(
        'broker probe',
        this.deadlineMs,
        admin.connect().then(() => admin.describeCluster()),
      );
      this.failures = 0;
      this.record(true, { brokers: cluster.brokers.length, controller: cluster.controller });
    } catch (error) {
      this.failures += 1;
      if (this.failures >= this.failuresToDown || !this.status.reachable) {
        this.record(false, { error: errorMessageOf(error) });
      }
    } finally {
      this.inFlight = false;
    }
    return this.brokerStatus();
  }

  private record(reachable: boolean, details: Omit<BrokerStatus, 'reachable' | 'since'>): void {
    if (reachable !== this.status.reachable) {
      if (reachable) this.log.log('Kafka cluster reachable');
      else this.log.warn(`Kafka cluster unreachable: ${details.error ?? 'unknown'}`);
    }
    const since = reachable === this.status.reachable ? this.status.since : new Date().toISOString();
    this.status = { reachable, since, ...details };
  }

  /**
   * Lag of a group on the given topics, per partition. A partition with no committed offset counts from the low
   * watermark when `fromEarliest` (where a new durable group starts), else as 0 (a new group starting at the end).
   */
  async groupLag(group: string, topics: string[], fromEarliest: boolean, timeoutMs = 3000): Promise<PartitionLag[]> {
    if (topics.length === 0) return [];
    const admin = this.adminClient();
    return withDeadline(
      `lag of group ${group}`,
      timeoutMs,
      (async () => {
        await admin.connect();
        const committed = await admin.fetchOffsets({ groupId: group, topics });
        const rows: PartitionLag[] = [];
        for (const { topic, partitions } of committed) {
          const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p]));
          for (const { partition, offset } of partitions) {
            const end = ends.get(partition);
            if (!end) continue;
            const high = BigInt(end.high);
            const has = BigInt(offset) >= 0n;
            const low = BigInt(end.low);
            // Records below the low watermark are gone (retention, deleted records): nobody can read them.
            const from = has ? (BigInt(offset) > low ? BigInt(offset) : low) : fromEarliest ? low : high;
            rows.push({
              group,
              topic,
              partition,
              committed: has ? offset : null,
              highWatermark: end.high,
              lag: Number(high > from ? high - from : 0n),
            });
          }
        }
        return rows;
      })(),
    );
  }

  /** Every topic on which `group` has committed an offset (its retry topic too, once it committed there). */
  async committedTopics(group: string, timeoutMs = 3000): Promise<string[]> {
    const admin = this.adminClient();
    return withDeadline(
      `topics of group ${group}`,
      timeoutMs,
      admin.connect().then(async () => (await admin.fetchOffsets({ groupId: group })).map((entry) => entry.topic)),
    );
  }

  /** The topics of `topics` that exist, each with its partitions' watermarks; a missing topic is left out. */
  async watermarks(topics: readonly string[], timeoutMs = 3000): Promise<TopicWatermarks[]> {
    const admin = this.adminClient();
    return withDeadline(
      `watermarks of ${topics.length} topics`,
      timeoutMs,
      (async () => {
        await admin.connect();
        const existing = new Set(await admin.listTopics());
        const result: TopicWatermarks[] = [];
        for (const topic of topics) {
          if (!existing.has(topic)) continue;
          const partitions = (await admin.fetchTopicOffsets(topic)).map(({ partition, low, high }) => ({
            partition,
            low,
            high,
          }));
          result.push({ topic, partitions });
        }
        return result;
      })(),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.admin?.disconnect().catch(() => undefined);
    this.admin = undefined;
  }
}
