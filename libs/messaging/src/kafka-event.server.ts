import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Logger } from '@nestjs/common';
import { CustomTransportStrategy, Server } from '@nestjs/microservices';
import { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { lastValueFrom } from 'rxjs';
import { EventOf, EventType, InvalidEventError, isEventType, parseEvent, topicOf } from '@app/contracts';
import { withLogFields } from '@app/telemetry';
import { backoffDelay } from './backoff';
import { ConsumeContext } from './consume-context';
import { errorClassOf, errorMessageOf, RetriableError } from './errors';
import {
  DeadLetterReason,
  deadLetterTopicOf,
  FailureHeaders,
  failureHeaders,
  MessageOrigin,
  ownHeaders,
  readRetryState,
  RetryState,
  retryTopicOf,
} from './failure-headers';
import { decideFailure } from './failure-decision';
import { InboxStore, NoInbox } from './inbox';
import { isBrokerUnreachable, isRebalancing } from './kafka-errors';
import { withConsumeSpan, withMessageTrace } from './tracing';
import { checkInboxRetention, startInboxPruning } from './inbox-retention';
import { CommitCadence, PartitionScheduler } from './partition-scheduler';
import type { EventProducer } from './producer';
import { RetryPolicy } from './retry-policy';
import { ensureTopics, TopicSettings, withKafkaRetries } from './topics';
import { KafkaMonitor, withDeadline } from './kafka-monitor';
import { PartitionProgress, partitionKey } from './partition-progress';
import type { StartPositions } from './start-positions';

/**
 * `durable`: a named group shared by the replicas, from the earliest offset on its first start, with retry and
 * dead-letter topics — work that must happen once. `per-instance`: a group of this process alone (the name plus a
 * unique suffix), from the latest offset, no retry or dead-letter topics, the group deleted on a clean shutdown —
 * every replica sees every event (live fan-out); a failure is logged and counted, never retried, never blocking.
 */
export type GroupKind = 'durable' | 'per-instance';

/** How one message ended for its handler: what the metrics count, by event type. */
export type MessageOutcome = 'handled' | 'duplicate' | 'retried' | 'dead-lettered' | 'failed' | 'skipped';

/** Receives every message's outcome (and the handler's time, when it ran): the app's metrics. */
export interface ConsumerObserver {
  message(group: string, eventType: string, outcome: MessageOutcome, handlerSeconds?: number): void;
}

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

export interface ConsumerStats {
  handled: number;
  duplicates: number;
  retried: number;
  deadLettered: number;
  skipped: number;
  /** Times this replica joined its group: one at start, one more per rebalance it took part in. */
  groupJoins: number;
  /** Times the kafkajs consumer crashed; each one is restarted (by kafkajs or, when it gives up, by this server). */
  crashes: number;
  /** Per-instance groups: messages whose handler failed or that were invalid, logged and passed over. */
  failed: number;
  /** Fetch requests answered; after the first one following a join, a new group's start offsets are resolved. */
  fetches: number;
  /** Consumers replaced because they stopped fetching (see stallTimeoutMs). */
  stalls: number;
}

/**
 * Where this replica stands in its group: `joined` with its assigned partitions (possibly none, when the group has
 * more members than partitions), or why not.
 */
export type Membership =
  | { state: 'joined'; since: string; assigned: Record<string, number[]> }
  | { state: 'joining' | 'rebalancing' | 'disconnected' | 'stopped' | 'idle'; since: string; reason: string };

export interface ConsumerStatus {
  consumerGroup: string;
  groupKind: GroupKind;
  /** The group id on the broker: the consumer group, or for a per-instance group that name plus this process's suffix. */
  groupId: string;
  state: 'starting' | 'idle' | 'consuming' | 'restarting' | 'stopping' | 'stopped';
  membership: Membership;
  /** Partitions held back until a retry is due or after a failed publish, as `topic[partition]`. */
  paused: string[];
  topics: string[];
  stats: ConsumerStats;
  /** When the consumer last fetched (an empty long poll counts) or finished a batch, and the batches in hand now. */
  lastFetchAt: string;
  batchesInFlight: number;
}

/** done: resolve the offset; wait: pause the partition until then; leave: stop here, uncommitted (shutting down). */
type Outcome = { kind: 'done' } | { kind: 'wait'; until: number } | { kind: 'leave' };

const DONE: Outcome = { kind: 'done' };

/**
 * Kafka consumer for `@HandleEvent` handlers, replacing Nest's ServerKafka whose failing handler re-fetches the
 * same offset forever. Per message: parse and validate at the boundary, dedupe in the inbox, run the handler, then
 * resolve and commit. No failure blocks a partition:
 *
 * - invalid input and permanent errors go to the group's dead-letter topic on the first attempt;
 * - retriable errors go to the group's retry topic with a due time; the same consumer reads that topic and pauses
 *   its partition until the head message is due, then runs the handler again — until it passes, runs out of
 *   attempts or passes the deadline, and then goes to the dead-letter topic.
 *
 * An offset is resolved only after its message was handled, or accepted by the broker on the retry or dead-letter
 * topic. If that publish fails, the partition is paused briefly and the message is fetched again.
 */
export class KafkaEventServer extends Server implements CustomTransportStrategy {
  private readonly log = new Logger(KafkaEventServer.name);
  private consumer?: Consumer;
  private idle?: { admin: Admin; timer: NodeJS.Timeout };
  private closing = false;
  /**
   * Set when a heartbeat (the runner's timer or between messages) learned that the group is rebalancing. kafkajs
   * raises a batch's error only once every batch of the same fetch has been handled, so without this a replica
   * would work through all it had fetched — minutes of jobs — while a new replica waits to be given partitions.
   */
  private rebalanceSeen?: Error;
  /** Aborted by close(): handlers doing long work stop, and their messages are left for the next owner. */
  private readonly shutdown = new AbortController();
  private state: ConsumerStatus['state'] = 'starting';
  private membership: Membership = { state: 'joining', since: new Date().toISOString(), reason: 'starting' };
  private subscribed: string[] = [];
  private readonly listeners = new Map<string, unknown[]>();
  private readonly scheduler: PartitionScheduler;
  private pruner?: NodeJS.Timeout;
  /** The restart after a crash in progress, if any: one at a time, and close() waits for it. */
  private restarting?: Promise<void>;
  private restartWait?: { timer: NodeJS.Timeout; resolve: () => void };
  /** joinInBackground: the start still trying; close() waits for it. */
  private backgroundStart?: Promise<void>;
  /** When the current consumer last fetched (an empty long poll counts), and the batches being handled now. */
  private lastFetchAt = Date.now();
  private batchesInFlight = 0;
  private watchdog?: NodeJS.Timeout;
  /** Per held partition, how long it went without a batch while this replica was free (see startWatchdog). */
  private readonly progress = new PartitionProgress();
  private lagCheck?: KafkaMonitor;
  private checkingLag = false;
  /**
   * Consumers replaced by a new one. kafkajs may be about to restart one by itself (its crash handler disconnects
   * and then schedules a restart): it must not, and close() still disconnects any that did not finish leaving.
   */
  private readonly retired = new Set<Consumer>();
  readonly stats: ConsumerStats = {
    handled: 0,
    duplicates: 0,
    retried: 0,
    deadLettered: 0,
    skipped: 0,
    groupJoins: 0,
    crashes: 0,
    failed: 0,
    fetches: 0,
    stalls: 0,
  };
  /** The group id on the broker. */
  readonly groupId: string;
  private kafka?: Kafka;
  private producer?: EventProducer;
  private inbox: InboxStore = new NoInbox();
  private positions?: StartPositions;

  constructor(private readonly options: KafkaEventServerOptions) {
    super();
    this.transportId = options.transportId;
    this.scheduler = new PartitionScheduler(() => this.consumer, options.retry);
    this.groupId = this.perInstance
      ? `${options.consumerGroup}.${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`
      : options.consumerGroup;
  }

  private get perInstance(): boolean {
    return this.options.groupKind === 'per-instance';
  }

  get retryTopic(): string {
    return retryTopicOf(this.options.consumerGroup);
  }

  get deadLetterTopic(): string {
    return deadLetterTopicOf(this.options.consumerGroup);
  }

  /**
   * Hands over what lives in the app's DI container (the Kafka client, the producer, the inbox's DataSource), which
   * exists only once Nest created the app around this server. Called before `listen`.
   */
  attach(deps: { kafka: Kafka; producer: EventProducer; inbox?: InboxStore; positions?: StartPositions }): void {
    this.kafka = deps.kafka;
    this.producer = deps.producer;
    if (deps.inbox) this.inbox = deps.inbox;
    this.positions = deps.positions;
  }

  /** Event types this app handles, from its `@HandleEvent` methods. */
  handledTypes(): EventType[] {
    return [...this.getHandlers().keys()].filter(isEventType);
  }

  consumerStatus(): ConsumerStatus {
    return {
      consumerGroup: this.options.consumerGroup,
      groupKind: this.options.groupKind ?? 'durable',
      groupId: this.groupId,
      state: this.state,
      membership: this.membership,
      paused: this.scheduler.pausedPartitions(),
      topics: this.subscribed,
      stats: { ...this.stats },
      lastFetchAt: new Date(this.lastFetchAt).toISOString(),
      batchesInFlight: this.batchesInFlight,
    };
  }

  /** Where a partition with no committed offset starts: the lag of such a partition counts from there. */
  get fromEarliest(): boolean {
    return !this.perInstance && (this.options.startFrom ?? 'earliest') === 'earliest';
  }

  private setMembership(
    membership: Membership extends infer M ? (M extends Membership ? Omit<M, 'since'> : never) : never,
  ): void {
    this.membership = { since: new Date().toISOString(), ...membership };
  }

  async listen(callback: (error?: unknown) => void): Promise<void> {
    if (this.options.joinInBackground) {
      // The app comes up at once; its readiness report shows the consumer joining (or why it cannot yet).
      callback();
      this.backgroundStart = this.startInBackground();
      return;
    }
    try {
      await this.start();
      callback();
    } catch (error) {
      callback(error);
    }
  }

  /** start() again with backoff until it succeeds or the server closes; close() waits for it. */
  private async startInBackground(): Promise<void> {
    for (let attempt = 1; !this.closing; attempt++) {
      try {
        await this.start();
        return;
      } catch (error) {
        const reason = `${isBrokerUnreachable(error) ? 'waiting for Kafka' : 'start failed'}: ${errorMessageOf(error)}`;
        this.setMembership({ state: 'joining', reason });
        // A consumer that connected before the failure must not linger in the group.
        await this.consumer?.disconnect().catch(() => undefined);
        this.consumer = undefined;
        if (attempt === 1 || !isBrokerUnreachable(error))
          this.log.warn(`consumer not started (${reason}); trying again`);
      }
      await new Promise<void>((resolve) => {
        this.restartWait = { timer: setTimeout(resolve, backoffDelay(this.options.retry, attempt)), resolve };
      });
      this.restartWait = undefined;
    }
  }

  private async start(): Promise<void> {
    const { consumerGroup } = this.options;
    const kafka = this.kafka;
    if (!kafka) throw new Error('KafkaEventServer.attach() was not called before listen()');
    const unknown = [...this.getHandlers().keys()].filter((p) => !isEventType(p));
    if (unknown.length > 0) throw new Error(`handlers for unknown event types: ${unknown.join(', ')}`);
    const sources = [...new Set(this.handledTypes().map((type) => topicOf(type)))];
    if (sources.length === 0) {
      // Nothing to consume yet: prove the broker answers, then stay up and keep checking it.
      const admin = kafka.admin();
      await admin.connect();
      await admin.describeCluster();
      this.idle = {
        admin,
        timer: setInterval(() => {
          admin.describeCluster().catch((error: unknown) => {
            this.log.warn(`broker check failed: ${errorMessageOf(error)}`);
          });
        }, 30_000),
      };
      this.state = 'idle';
      this.setMembership({ state: 'idle', reason: 'no event handlers registered' });
      this.log.log('connected to Kafka; no event handlers registered, idle');
      return;
    }
    if (this.perInstance) {
      // Live fan-out: no retry or dead-letter topics, nothing created on the broker but the group itself.
      await ensureTopics(kafka, sources, this.options.topics);
      await this.positions?.ready?.();
      if (this.closing) return;
      await this.runConsumer(kafka, sources);
      if (await this.closedWhileStarting()) return;
      this.subscribed = sources;
      this.state = 'consuming';
      this.startWatchdog(kafka);
      this.log.log(`consuming ${sources.join(', ')} as per-instance group ${this.groupId}, from the latest offset`);
      return;
    }
    const topics = [...sources, this.retryTopic];
    await ensureTopics(kafka, [...topics, this.deadLetterTopic], this.options.topics);
    const retentionHours = this.inbox.prune ? (this.options.inboxRetentionHours ?? 0) : 0;
    await checkInboxRetention(kafka, [...topics, this.deadLetterTopic], retentionHours);
    if (this.closing) return;
    await this.runConsumer(kafka, topics);
    if (await this.closedWhileStarting()) return;
    this.subscribed = topics;
    this.state = 'consuming';
    this.startWatchdog(kafka);
    this.pruner = startInboxPruning(this.inbox, consumerGroup, retentionHours, this.log);
    this.log.log(
      `consuming ${topics.join(', ')} as group ${consumerGroup}; dead letters go to ${this.deadLetterTopic}`,
    );
  }

  private async runConsumer(kafka: Kafka, topics: string[]): Promise<void> {
    const consumer: Consumer = kafka.consumer({
      // kafkajs's default for consumers (5 retries), and no restart of a consumer already replaced.
      retry: { retries: 5, restartOnFailure: () => Promise.resolve(!this.retired.has(consumer) && !this.closing) },
      groupId: this.groupId,
      sessionTimeout: this.options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: this.options.heartbeatIntervalMs ?? 3_000,
      maxBytesPerPartition: this.options.maxBytesPerPartition ?? 1_048_576,
      // A resumed retry partition is fetched after the current long poll returns: keep that poll short.
      maxWaitTimeInMs: 1000,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      this.stats.groupJoins += 1;
      if (consumer === this.consumer) this.lastFetchAt = Date.now();
      if (consumer === this.consumer) this.rebalanceSeen = undefined;
      if (consumer === this.consumer) this.setMembership({ state: 'joined', assigned: payload.memberAssignment });
      if (consumer === this.consumer) this.progress.assigned(payload.memberAssignment, Date.now());
      if (consumer === this.consumer) this.seekToStartPositions(consumer, payload.memberAssignment);
    });
    consumer.on(consumer.events.START_BATCH_PROCESS, ({ payload }) => {
      if (consumer === this.consumer) {
        this.progress.fetched(payload.topic, payload.partition, BigInt(payload.lastOffset) + 1n);
      }
    });
    consumer.on(consumer.events.FETCH, () => {
      this.stats.fetches += 1;
      if (consumer === this.consumer) this.lastFetchAt = Date.now();
    });
    consumer.on(consumer.events.REBALANCING, () => {
      if (consumer === this.consumer) this.setMembership({ state: 'rebalancing', reason: 'the group is rebalancing' });
    });
    consumer.on(consumer.events.STOP, () => {
      if (consumer === this.consumer) this.setMembership({ state: 'stopped', reason: 'consumer stopped' });
    });
    // kafkajs restarts itself after a retriable crash; after any other it stops consuming for good, silently.
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      this.stats.crashes += 1;
      if (consumer === this.consumer && !this.closing) {
        this.setMembership({
          state: 'disconnected',
          reason: `${errorClassOf(payload.error)}: ${payload.error.message}${payload.restart ? '; rejoining' : ''}`,
        });
      }
      if (payload.restart || this.closing || consumer !== this.consumer) return;
      this.log.error(`consumer crashed and kafkajs gave up: ${errorClassOf(payload.error)}: ${payload.error.message}`);
      this.restarting ??= this.restartAfterCrash(kafka, topics).finally(() => {
        this.restarting = undefined;
      });
    });
    await consumer.connect();
    // Durable: a new group (or a committed offset that fell out of range) starts at the earliest offset.
    // Per-instance: a new group every start, from the latest: it serves what happens while it runs.
    const fromBeginning = this.fromEarliest;
    const sources = topics.filter((topic) => topic !== this.retryTopic);
    await withKafkaRetries('subscribe', () => consumer.subscribe({ topics: sources, fromBeginning }));
    // The retry topic always from its start: a retry waiting uncommitted on a partition never committed before must
    // not be skipped when a rebalance hands the partition to a replica that would otherwise start at the end.
    if (sources.length < topics.length) {
      await withKafkaRetries('subscribe', () => consumer.subscribe({ topics: [this.retryTopic], fromBeginning: true }));
    }
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.concurrency ?? 1,
      eachBatch: (payload) => this.handleBatch(payload),
    });
  }

  /** Every join starts each assigned partition where the app's StartPositions say (applied before the next fetch). */
  private seekToStartPositions(consumer: Consumer, assigned: Record<string, number[]>): void {
    const positions = this.positions;
    if (!positions) return;
    for (const [topic, partitions] of Object.entries(assigned)) {
      for (const partition of partitions) {
        const offset = positions.startOffset(topic, partition);
        if (offset !== undefined) consumer.seek({ topic, partition, offset });
      }
    }
  }

  /** close() ran while the consumer joined (a sibling server failed to start): it must not stay in the group. */
  private async closedWhileStarting(): Promise<boolean> {
    if (!this.closing) return false;
    await this.consumer?.disconnect().catch(() => undefined);
    this.consumer = undefined;
    return true;
  }

  /**
   * Replaces a stalled consumer (see KafkaEventServerOptions.stallTimeoutMs): one that fetched nothing for the limit
   * with nothing in hand, or one that fetches yet got no batch for a partition it holds (not paused) for the limit
   * while that partition has messages past the group's committed offset.
   */
  private startWatchdog(kafka: Kafka): void {
    const limit = this.options.stallTimeoutMs ?? 45_000;
    if (limit <= 0 || this.watchdog) return;
    this.lastFetchAt = Date.now();
    this.watchdog = setInterval(
      () => {
        const eligible =
          !this.closing && !this.restarting && this.state === 'consuming' && this.membership.state === 'joined';
        const paused = new Set(this.scheduler.pausedPartitions());
        const overdue = this.progress.tick(Date.now(), !eligible || this.batchesInFlight > 0, limit, paused);
        const silentMs = Date.now() - this.lastFetchAt;
        if (this.closing || this.restarting || this.state !== 'consuming' || this.batchesInFlight > 0) return;
        // A member waits in JoinGroup, fetching nothing, until every member rejoins (up to the rebalance timeout).
        if (this.membership.state === 'rebalancing') return;
        if (silentMs > limit) {
          this.replaceStalled(kafka, `no fetch for ${Math.round(silentMs / 1000)} s and nothing in hand`);
          return;
        }
        // Per-instance groups commit nothing: their lag says nothing.
        if (overdue.length > 0 && !this.perInstance && !this.checkingLag) void this.checkOverdue(kafka, overdue, limit);
      },
      Math.min(5000, Math.max(100, limit / 3)),
    );
    this.watchdog.unref();
  }

  /** Replaces the consumer when one of the partitions that got no batch for the limit has messages waiting. */
  private async checkOverdue(kafka: Kafka, overdue: string[], limit: number): Promise<void> {
    this.checkingLag = true;
    try {
      const before = new Map(overdue.map((key) => [key, this.progress.deliveries(key)]));
      const topics = [...new Set(overdue.map((key) => key.slice(0, key.lastIndexOf('['))))];
      this.lagCheck ??= new KafkaMonitor(kafka);
      const lag = await this.lagCheck.groupLag(this.groupId, topics, this.fromEarliest, 5000);
      const waiting = (key: string, highWatermark: string) =>
        // Messages past what the group committed and past what kafkajs fetched (a tail of transaction markers is
        // fetched, handed over empty and never committed), and nothing delivered since the check began.
        BigInt(highWatermark) > this.progress.fetchedUpTo(key) &&
        before.get(key) === this.progress.deliveries(key) &&
        this.progress.holds(key);
      const candidates = lag.filter(
        (row) => row.lag > 0 && waiting(partitionKey(row.topic, row.partition), row.highWatermark),
      );
      if (candidates.length === 0) return;
      // A message that landed between reading the committed offset and the end is fetched within a poll: give it one.
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000, limit / 4)));
      const stuck = candidates.find((row) => waiting(partitionKey(row.topic, row.partition), row.highWatermark));
      if (!stuck || this.closing || this.restarting || this.batchesInFlight > 0) return;
      this.replaceStalled(
        kafka,
        `no batch for ${partitionKey(stuck.topic, stuck.partition)} in ${Math.round(limit / 1000)} s while ${stuck.lag} message(s) wait on it`,
      );
    } catch (error) {
      // A lag check that got no answer is no evidence either way; the next overdue partition asks again.
      this.log.debug(`lag check failed: ${errorMessageOf(error)}`);
    } finally {
      this.checkingLag = false;
    }
  }

  private replaceStalled(kafka: Kafka, why: string): void {
    this.stats.stalls += 1;
    this.log.warn(`consumer stalled: ${why}; starting a new one`);
    this.setMembership({ state: 'disconnected', reason: `stalled: ${why}; rejoining` });
    this.restarting ??= this.restartAfterCrash(kafka, this.subscribed).finally(() => {
      this.restarting = undefined;
    });
  }

  /** A new kafkajs consumer in place of one that crashed for good; retried with backoff until it runs or we close. */
  private async restartAfterCrash(kafka: Kafka, topics: string[]): Promise<void> {
    this.state = 'restarting';
    for (let attempt = 1; !this.closing; attempt++) {
      // Bounded: a stalled consumer may never finish leaving; the group drops it after its session timeout.
      const old = this.consumer;
      if (old) {
        this.retired.add(old);
        await withDeadline('disconnecting the old consumer', 10_000, old.disconnect())
          .then(() => this.retired.delete(old))
          .catch(() => undefined);
      }
      if (this.closing) return;
      try {
        await this.runConsumer(kafka, topics);
        if (this.closing) {
          // close() ran while the new consumer joined: it must not stay in the group behind our back.
          await this.consumer?.disconnect().catch(() => undefined);
          return;
        }
        this.state = 'consuming';
        this.lastFetchAt = Date.now();
        this.log.log(`consumer restarted (attempt ${attempt})`);
        return;
      } catch (error) {
        const delay = backoffDelay(this.options.retry, attempt);
        this.log.warn(`consumer restart failed (${errorMessageOf(error)}); again in ${delay} ms`);
        await new Promise<void>((resolve) => {
          this.restartWait = { timer: setTimeout(resolve, delay), resolve };
        });
        this.restartWait = undefined;
      }
    }
  }

  /** Works through one partition's batch in order; stops at a message that must wait, commits what was handled. */
  private async handleBatch(payload: EachBatchPayload): Promise<void> {
    this.batchesInFlight += 1;
    if (payload.batch.messages.length > 0) this.progress.delivered(payload.batch.topic, payload.batch.partition);
    try {
      await this.handlePartitionBatch(payload);
    } finally {
      this.batchesInFlight -= 1;
      this.lastFetchAt = Date.now();
    }
  }

  private async handlePartitionBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const { topic, partition } = batch;
    const heartbeat = async () => {
      try {
        await payload.heartbeat();
      } catch (error) {
        if (isRebalancing(error)) this.rebalanceSeen ??= error instanceof Error ? error : new Error(String(error));
        throw error;
      }
    };
    const assigned = () => payload.isRunning() && !payload.isStale();
    const cadence = new CommitCadence(this.options.commitEveryMessages ?? 100, this.options.commitIntervalMs ?? 1000);
    const commit = async () => {
      const offset = cadence.next();
      if (offset === undefined) return;
      await payload.commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset }] }] });
      cadence.committed();
    };

    try {
      for (const message of batch.messages) {
        if (!assigned() || this.closing || this.rebalanceSeen !== undefined) break;
        let outcome: Outcome;
        try {
          outcome = await this.handleMessage(topic, partition, message, heartbeat);
          this.scheduler.settled(topic, partition);
        } catch (error) {
          // The retry or dead-letter publish failed (or the broker went away): keep the offset, try again shortly.
          const delay = this.scheduler.setAsideFailed(topic, partition);
          this.log.warn(
            `${topic}[${partition}]@${message.offset} could not be set aside (${errorClassOf(error)}: ${errorMessageOf(error)}); fetching it again in ${delay} ms`,
          );
          outcome = { kind: 'wait', until: Date.now() + delay };
        }
        if (outcome.kind === 'leave') break;
        if (outcome.kind === 'wait') {
          this.scheduler.pauseUntil(topic, partition, outcome.until);
          break;
        }
        payload.resolveOffset(message.offset);
        if (cadence.handled(message.offset)) await commit();
        await heartbeat();
      }
    } finally {
      // The last commit of a batch is retried for a few seconds: right after a broker restart the group
      // coordinator may still be loading, and with no further message on the partition nothing would commit
      // again — its lag would stay up although everything was handled.
      for (let attempt = 1; ; attempt++) {
        try {
          await commit();
          break;
        } catch (error) {
          if (attempt >= 5 || !assigned() || this.closing) {
            // Lost the partition in a rebalance, or still failing: the next owner or batch re-reads from the last
            // commit, and the inbox makes the redelivery harmless.
            this.log.warn(`commit on ${topic}[${partition}] failed: ${errorMessageOf(error)}`);
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** (attempt - 1)));
        }
      }
    }
    // The rest of this fetch waits: kafkajs rejoins once every batch of it has returned, and refetches after.
    if (this.rebalanceSeen !== undefined) throw this.rebalanceSeen;
  }

  private async handleMessage(
    topic: string,
    partition: number,
    message: KafkaMessage,
    heartbeat: () => Promise<void>,
  ): Promise<Outcome> {
    let prior: RetryState | undefined;
    if (topic === this.retryTopic) {
      prior = readRetryState(message.headers);
      if (!prior) {
        const origin = { topic, partition, offset: message.offset, timestamp: message.timestamp };
        const error = new InvalidEventError('invalid-envelope', 'message on the retry topic lacks its retry headers');
        await this.deadLetter(message, { origin, attempts: 1, firstFailedAt: Date.now() }, error, 'invalid-message');
        return DONE;
      }
      const until = this.scheduler.retryDueAt(topic, partition, message.offset, prior.retryAt);
      if (until > Date.now()) return { kind: 'wait', until };
      this.scheduler.retryTaken(topic, partition);
    }
    const origin: MessageOrigin = prior?.origin ?? {
      topic,
      partition,
      offset: message.offset,
      timestamp: message.timestamp,
    };
    const attempt = (prior?.attempts ?? 0) + 1;
    const firstFailedAt = prior?.firstFailedAt ?? Date.now();
    const where = `${origin.topic}[${origin.partition}]@${origin.offset}`;

    let event: EventOf<EventType>;
    try {
      event = parseEvent(message.value);
    } catch (error) {
      if (!(error instanceof InvalidEventError)) throw error;
      if (this.perInstance) return this.passOver(where, '(invalid)', error);
      await this.deadLetter(message, { origin, attempts: attempt, firstFailedAt }, error, 'invalid-message');
      // Not the type the message claims: labels must not grow with what senders write.
      this.observe('(invalid)', 'dead-lettered');
      return DONE;
    }
    // Event types are plain strings, the handlers' own keys: Nest's getHandlerByPattern would first try (and fail,
    // with a thrown exception) to parse each one as JSON — a fifth of the runtime's CPU per message.
    const handler = this.getHandlers().get(event.type);
    if (!handler) {
      // A known event on a shared topic that this group does not act on.
      this.stats.skipped += 1;
      this.observe(event.type, 'skipped');
      return DONE;
    }

    // Every line logged while it is handled names the event and the trace the message carries.
    const fields = { correlationId: event.correlationid, eventId: event.id, eventType: event.type };
    return withLogFields(fields, () =>
      withMessageTrace(message.headers, async (): Promise<Outcome> => {
        const beat = setInterval(() => {
          heartbeat().catch(() => undefined);
        }, this.options.heartbeatIntervalMs ?? 3_000);
        const started = performance.now();
        const seconds = () => (performance.now() - started) / 1000;
        try {
          const span = {
            topic: origin.topic,
            partition: origin.partition,
            offset: origin.offset,
            consumerGroup: this.options.consumerGroup,
            eventType: event.type,
            eventId: event.id,
            attempt,
          };
          const outcome = await withConsumeSpan(message.headers, span, () =>
            this.inbox.run(
              {
                consumerGroup: this.options.consumerGroup,
                eventId: event.id,
                eventType: event.type,
                topic: origin.topic,
                partition: origin.partition,
                offset: origin.offset,
              },
              async (transaction, lost) => {
                const context = new ConsumeContext({
                  topic: origin.topic,
                  partition: origin.partition,
                  offset: origin.offset,
                  key: message.key?.toString('utf8') ?? null,
                  consumerGroup: this.options.consumerGroup,
                  attempt,
                  eventId: event.id,
                  correlationId: event.correlationid,
                  transaction,
                  heartbeat,
                  signal: lost ? AbortSignal.any([this.shutdown.signal, lost]) : this.shutdown.signal,
                  finalAttempt: () =>
                    decideFailure(
                      { attempt, error: new RetriableError('would fail now'), firstFailedAt, now: Date.now() },
                      this.options.retry,
                      () => 1,
                    ).kind === 'dead-letter',
                });
                const result: unknown = await handler(event, context);
                await lastValueFrom(this.transformToObservable(result), { defaultValue: undefined });
              },
            ),
          );
          if (outcome === 'duplicate') {
            this.stats.duplicates += 1;
            this.observe(event.type, 'duplicate');
            this.log.debug(
              `${where} ${event.type} ${event.id} already handled by ${this.options.consumerGroup}; skipped`,
            );
          } else {
            this.stats.handled += 1;
            this.observe(event.type, 'handled', seconds());
            if (attempt > 1) this.log.log(`${where} ${event.type} ${event.id} handled on attempt ${attempt}`);
          }
          return DONE;
        } catch (error) {
          const took = seconds();
          if (this.shutdown.signal.aborted) {
            // Stopped by the shutdown, not failed: no retry, no commit; the next owner of the partition runs it again.
            this.log.log(`${where} ${event.type} ${event.id} stopped by the shutdown; left for the next owner`);
            return { kind: 'leave' };
          }
          if (this.perInstance) return this.passOver(`${where} ${event.type} ${event.id}`, event.type, error, took);
          const label = `${where} ${event.type} ${event.id} attempt ${attempt}/${this.options.retry.maxAttempts}`;
          const decision = decideFailure(
            { attempt, error, firstFailedAt, now: Date.now(), waits: prior?.waits },
            this.options.retry,
          );
          const waits = decision.kind === 'retry' ? decision.waits : prior?.waits;
          const failure = { origin, attempts: decision.attempts, firstFailedAt, waits };
          if (decision.kind === 'dead-letter') {
            await this.deadLetter(message, failure, error, decision.reason);
            this.observe(event.type, 'dead-lettered', took);
            return DONE;
          }
          const retryAt = decision.at;
          await this.republish(message, this.retryTopic, {
            ...failureHeaders({ ...failure, consumerGroup: this.options.consumerGroup, error }),
            [FailureHeaders.RetryAt]: String(retryAt),
          });
          this.stats.retried += 1;
          this.observe(event.type, 'retried', took);
          this.log.warn(
            `${label} failed (${errorClassOf(error)}: ${errorMessageOf(error)}); retry in ${retryAt - Date.now()} ms`,
          );
          return DONE;
        } finally {
          clearInterval(beat);
        }
      }),
    );
  }

  /** Per-instance groups have no retry or dead-letter topics: a failure is logged and counted, and the partition goes on. */
  private passOver(where: string, eventType: string, error: unknown, handlerSeconds?: number): Outcome {
    this.stats.failed += 1;
    this.observe(eventType, 'failed', handlerSeconds);
    this.log.warn(
      `${where} failed in per-instance group ${this.groupId}, passed over: ${errorClassOf(error)}: ${errorMessageOf(error)}`,
    );
    return DONE;
  }

  private observe(eventType: string, outcome: MessageOutcome, handlerSeconds?: number): void {
    this.options.observer?.message(this.options.consumerGroup, eventType, outcome, handlerSeconds);
  }

  private async deadLetter(
    message: KafkaMessage,
    failure: { origin: MessageOrigin; attempts: number; firstFailedAt: number },
    error: unknown,
    reason: DeadLetterReason,
  ): Promise<void> {
    await this.republish(message, this.deadLetterTopic, {
      ...failureHeaders({ ...failure, consumerGroup: this.options.consumerGroup, error }),
      [FailureHeaders.Reason]: reason,
    });
    this.stats.deadLettered += 1;
    const { origin } = failure;
    this.log.error(
      `${origin.topic}[${origin.partition}]@${origin.offset} → ${this.deadLetterTopic} (${reason} after ${failure.attempts} attempt(s)): ${errorClassOf(error)}: ${errorMessageOf(error)}`,
    );
  }

  /** Republishes the message's exact key, value and own headers, plus the failure headers; resolves once acked. */
  private async republish(message: KafkaMessage, topic: string, headers: Record<string, string>): Promise<void> {
    if (!this.producer) throw new Error('KafkaEventServer.attach() was not called before listen()');
    await this.producer.send([
      {
        topic,
        key: message.key?.toString('utf8') ?? null,
        value: message.value,
        headers: { ...ownHeaders(message.headers), ...headers },
      },
    ]);
  }

  /** Stops fetching, lets in-flight handlers finish and commit, then leaves the group. */
  async close(): Promise<void> {
    this.closing = true;
    this.state = 'stopping';
    this.shutdown.abort(new Error('the consumer is shutting down'));
    this.scheduler.close();
    clearInterval(this.pruner);
    clearInterval(this.watchdog);
    await this.lagCheck?.close();
    if (this.restartWait) {
      clearTimeout(this.restartWait.timer);
      this.restartWait.resolve();
    }
    await this.restarting;
    await this.backgroundStart;
    if (this.idle) {
      clearInterval(this.idle.timer);
      await this.idle.admin.disconnect();
      this.idle = undefined;
    }
    for (const old of this.retired)
      await withDeadline('disconnecting a replaced consumer', 10_000, old.disconnect()).catch(() => undefined);
    this.retired.clear();
    if (this.consumer) {
      await this.consumer.disconnect();
      this.consumer = undefined;
      if (this.perInstance && this.kafka) await this.deleteOwnGroup(this.kafka);
    }
    this.state = 'stopped';
    this.setMembership({ state: 'stopped', reason: 'the app is shutting down' });
  }

  /** A per-instance group is never used again: leave nothing behind on the broker. */
  private async deleteOwnGroup(kafka: Kafka): Promise<void> {
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.deleteGroups([this.groupId]);
    } catch (error) {
      this.log.warn(`could not delete per-instance group ${this.groupId}: ${errorMessageOf(error)}`);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- signature fixed by Nest's Server
  on(event: string, callback: Function): void {
    const list = this.listeners.get(event) ?? [];
    list.push(callback);
    this.listeners.set(event, list);
  }

  unwrap<T>(): T {
    return this.consumer as T;
  }
}
