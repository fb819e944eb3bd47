import type { RetryPolicy } from '../retry-policy';
import type { TopicSettings } from '../topics';
import type { ConsumerObserver, ConsumerStats } from './stats';

/**
 * `durable`: a named group shared by the replicas, from the earliest offset on its first start, with retry and
 * dead-letter topics — work that must happen once. `per-instance`: a group of this process alone (the name plus a
 * unique suffix), from the latest offset, no retry or dead-letter topics, the group deleted on a clean shutdown —
 * every replica sees every event (live fan-out); a failure is logged and counted, never retried, never blocking.
 */
export type GroupKind = 'durable' | 'per-instance';

export interface KafkaEventServerOptions {
  consumerGroup: string;
  groupKind?: GroupKind;
  /** Where a durable group with no committed offset starts (default earliest). Per-instance groups start at latest. */
  startFrom?: 'earliest' | 'latest';
  /** Set when an app runs several consumer servers: each registers only the handlers routed to its id. */
  transportId?: symbol;
  observer?: ConsumerObserver;
  /**
   * When the broker cannot be reached at start, let the app come up and keep trying in the background (the
   * readiness report says so) instead of failing the boot. For apps that serve without Kafka (users-api).
   */
  joinInBackground?: boolean;
  topics: TopicSettings;
  /** Partitions handled in parallel by this replica (order within a partition is always kept). */
  concurrency?: number;
  retry: RetryPolicy;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /**
   * How long the group waits for its members to rejoin in a rebalance (kafkajs: 60 s). A claim-mode group takes a
   * short one: its claims protect a job that runs through a rebalance, so the group need not wait for the job.
   */
  rebalanceTimeoutMs?: number;
  /**
   * A consumer that has fetched nothing for this long while no batch is being handled is stalled (kafkajs can keep
   * waiting on a group coordinator that died with its broker) and is replaced by a new one. Idle consumers fetch
   * about once a second, so only a stuck one goes this long. So is one that got no batch for a partition it holds
   * for this long while free to take one, when the group's lag says messages wait there (kafkajs can go on fetching
   * from brokers that no longer lead the partition). 0 turns the check off.
   */
  stallTimeoutMs?: number;
  maxBytesPerPartition?: number;
  /** Commit at least this often while a batch is being worked through. */
  commitEveryMessages?: number;
  commitIntervalMs?: number;
  /** Inbox records older than this are pruned hourly; 0 keeps them. Checked at boot against the topics' retention. */
  inboxRetentionHours?: number;
}

/**
 * Where this replica stands in its group: `joined` with its assigned partitions (possibly none, when the group has
 * more members than partitions), or why not.
 */
export type Membership =
  | { state: 'joined'; since: string; assigned: Record<string, number[]> }
  | { state: 'joining' | 'rebalancing' | 'disconnected' | 'stopped' | 'idle'; since: string; reason: string };

/** A membership to record now: `since` is stamped when it is set. */
export type MembershipChange = Membership extends infer M ? (M extends Membership ? Omit<M, 'since'> : never) : never;

export type ServerState = 'starting' | 'idle' | 'consuming' | 'restarting' | 'stopping' | 'stopped';

export interface ConsumerStatus {
  consumerGroup: string;
  groupKind: GroupKind;
  /** The group id on the broker: the consumer group, or for a per-instance group that name plus this process's suffix. */
  groupId: string;
  state: ServerState;
  membership: Membership;
  /** Partitions held back until a retry is due or after a failed publish, as `topic[partition]`. */
  paused: string[];
  topics: string[];
  stats: ConsumerStats;
  /** When the consumer last fetched (an empty long poll counts) or finished a batch, and the batches in hand now. */
  lastFetchAt: string;
  batchesInFlight: number;
}
