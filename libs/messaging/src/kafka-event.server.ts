import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Logger } from '@nestjs/common';
import { CustomTransportStrategy, Server } from '@nestjs/microservices';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import { lastValueFrom } from 'rxjs';
import { EventType, isEventType, topicOf } from '@app/contracts';
import { backoffDelay } from './backoff';
import { errorMessageOf } from './errors';
import { InboxStore, NoInbox } from './inbox';
import { checkInboxRetention, startInboxPruning } from './inbox-retention';
import { isBrokerUnreachable } from './kafka-errors';
import { PartitionProgress } from './partition-progress';
import { PartitionScheduler } from './partition-scheduler';
import type { EventProducer } from './producer';
import type { StartPositions } from './start-positions';
import { ensureTopics } from './topics';
import { BatchRunner } from './consumer/batch-runner';
import { FailureRouter } from './consumer/failure-router';
import { EventHandlerFn, MessagePipeline } from './consumer/message-pipeline';
import type { KafkaEventServerOptions, Membership, MembershipChange, ServerState } from './consumer/options';
import { StallWatchdog } from './consumer/stall-watchdog';
import { ConsumerStats, ConsumerTally } from './consumer/stats';
import { ConsumerSupervisor } from './consumer/supervisor';

export type { GroupKind, KafkaEventServerOptions, Membership } from './consumer/options';
export type { ConsumerObserver, ConsumerStats, MessageOutcome } from './consumer/stats';

export interface ConsumerStatus {
  consumerGroup: string;
  groupKind: 'durable' | 'per-instance';
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

/**
 * Kafka consumer for `@HandleEvent` handlers, replacing Nest's ServerKafka whose failing handler re-fetches the
 * same offset forever. The Nest-facing facade of the consumer runtime (libs/messaging/src/consumer): it creates the
 * topics, then hands the work to its parts — the supervisor (one kafkajs consumer's life), the batch runner
 * (partition batches, pause and commit), the message pipeline (decode, validate, inbox, handler, outcome), the
 * failure router (retry and dead-letter topics) and the stall watchdog. No failure blocks a partition:
 *
 * - invalid input and permanent errors go to the group's dead-letter topic on the first attempt;
 * - retriable errors go to the group's retry topic with a due time; the same consumer reads that topic and pauses
 *   its partition until the head message is due, then runs the handler again — until it passes, runs out of
 *   attempts or passes the deadline, and then goes to the dead-letter topic.
 *
 * An offset is resolved only after its message was handled, or accepted by the broker on the retry or dead-letter
 * topic. If that publish fails (the broker away), the partition is paused briefly and the message fetched again.
 */
export class KafkaEventServer extends Server implements CustomTransportStrategy {
  private readonly log = new Logger(KafkaEventServer.name);
  private idle?: { admin: Admin; timer: NodeJS.Timeout };
  private closing = false;
  /** Aborted by close(): handlers doing long work stop, and their messages are left for the next owner. */
  private readonly shutdown = new AbortController();
  private state: ServerState = 'starting';
  private membership: Membership = { state: 'joining', since: new Date().toISOString(), reason: 'starting' };
  private subscribed: string[] = [];
  private readonly listeners = new Map<string, unknown[]>();
  private readonly tally: ConsumerTally;
  private readonly scheduler: PartitionScheduler;
  private readonly progress = new PartitionProgress();
  private readonly router: FailureRouter;
  private readonly runner: BatchRunner;
  private supervisor?: ConsumerSupervisor;
  private watchdog?: StallWatchdog;
  private pruner?: NodeJS.Timeout;
  /** joinInBackground: the start still trying; close() waits for it. */
  private backgroundStart?: Promise<void>;
  private backgroundWait?: { timer: NodeJS.Timeout; resolve: () => void };
  /** The group id on the broker. */
  readonly groupId: string;
  private kafka?: Kafka;
  private producer?: EventProducer;
  private inbox: InboxStore = new NoInbox();
  private positions?: StartPositions;

  constructor(private readonly options: KafkaEventServerOptions) {
    super();
    this.transportId = options.transportId;
    this.groupId = this.perInstance
      ? `${options.consumerGroup}.${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`
      : options.consumerGroup;
    this.tally = new ConsumerTally(options.consumerGroup, options.observer);
    this.scheduler = new PartitionScheduler(
      () => this.supervisor?.current,
      options.retry,
      Date.now,
      (what, error) => this.log.warn(`could not ${what} (${errorMessageOf(error)}); applied again on the next join`),
    );
    this.router = new FailureRouter(options.consumerGroup, () => this.requireProducer(), this.log);
    const pipeline = new MessagePipeline(
      {
        consumerGroup: options.consumerGroup,
        groupId: this.groupId,
        perInstance: this.perInstance,
        retry: options.retry,
        heartbeatIntervalMs: options.heartbeatIntervalMs ?? 3_000,
      },
      {
        handlerOf: (type) => this.handlerOf(type),
        inbox: () => this.inbox,
        scheduler: this.scheduler,
        router: this.router,
        tally: this.tally,
        shutdown: this.shutdown.signal,
        log: this.log,
      },
    );
    this.runner = new BatchRunner(
      { commitEveryMessages: options.commitEveryMessages ?? 100, commitIntervalMs: options.commitIntervalMs ?? 1000 },
      {
        handle: (topic, partition, message, heartbeat) => pipeline.handle(topic, partition, message, heartbeat),
        scheduler: this.scheduler,
        running: () => !this.closing,
        log: this.log,
      },
    );
  }

  get stats(): ConsumerStats {
    return this.tally.stats;
  }

  private get perInstance(): boolean {
    return this.options.groupKind === 'per-instance';
  }

  get retryTopic(): string {
    return this.router.retryTopic;
  }

  get deadLetterTopic(): string {
    return this.router.deadLetterTopic;
  }

  /** Where a partition with no committed offset starts: the lag of such a partition counts from there. */
  get fromEarliest(): boolean {
    return !this.perInstance && (this.options.startFrom ?? 'earliest') === 'earliest';
  }

  /**
   * Hands over what lives in the app's DI container (the Kafka client, the producer, the inbox's DataSource, the
   * start positions), which exists only once Nest created the app around this server. Called before `listen`.
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
      stats: this.tally.snapshot(),
      lastFetchAt: new Date(this.supervisor?.lastFetchAt ?? Date.now()).toISOString(),
      batchesInFlight: this.runner.batchesInFlight,
    };
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
        await this.supervisor?.discard();
        if (attempt === 1 || !isBrokerUnreachable(error))
          this.log.warn(`consumer not started (${reason}); trying again`);
      }
      await new Promise<void>((resolve) => {
        this.backgroundWait = { timer: setTimeout(resolve, backoffDelay(this.options.retry, attempt)), resolve };
      });
      this.backgroundWait = undefined;
    }
  }

  private async start(): Promise<void> {
    const kafka = this.kafka;
    if (!kafka) throw new Error('KafkaEventServer.attach() was not called before listen()');
    const unknown = [...this.getHandlers().keys()].filter((p) => !isEventType(p));
    if (unknown.length > 0) throw new Error(`handlers for unknown event types: ${unknown.join(', ')}`);
    const sources = [...new Set(this.handledTypes().map((type) => topicOf(type)))];
    if (sources.length === 0) return this.startIdle(kafka);
    // Live fan-out (per-instance): no retry or dead-letter topics, nothing created on the broker but the group.
    const topics = this.perInstance ? sources : [...sources, this.retryTopic];
    const created = this.perInstance ? topics : [...topics, this.deadLetterTopic];
    await ensureTopics(kafka, created, this.options.topics);
    const retentionHours = this.inbox.prune ? (this.options.inboxRetentionHours ?? 0) : 0;
    await checkInboxRetention(kafka, created, retentionHours);
    // No fetch before the app knows where each partition starts.
    await this.positions?.ready?.();
    if (this.closing) return;
    this.supervisor ??= this.createSupervisor(kafka, topics);
    await this.supervisor.start();
    if (this.closing) {
      // close() ran while the consumer joined (a sibling server failed to start): it must not stay in the group.
      await this.supervisor.discard();
      return;
    }
    this.subscribed = topics;
    this.state = 'consuming';
    this.watchdog ??= this.createWatchdog(kafka);
    this.watchdog.start();
    this.pruner = startInboxPruning(this.inbox, this.options.consumerGroup, retentionHours, this.log);
    this.log.log(
      this.perInstance
        ? `consuming ${topics.join(', ')} as per-instance group ${this.groupId}, from the latest offset`
        : `consuming ${topics.join(', ')} as group ${this.options.consumerGroup}; dead letters go to ${this.deadLetterTopic}`,
    );
  }

  /** Nothing to consume yet: prove the broker answers, then stay up and keep checking it. */
  private async startIdle(kafka: Kafka): Promise<void> {
    const admin = kafka.admin();
    await admin.connect();
    await admin.describeCluster();
    const timer = setInterval(() => {
      admin.describeCluster().catch((error: unknown) => {
        this.log.warn(`broker check failed: ${errorMessageOf(error)}`);
      });
    }, 30_000);
    this.idle = { admin, timer };
    this.state = 'idle';
    this.setMembership({ state: 'idle', reason: 'no event handlers registered' });
    this.log.log('connected to Kafka; no event handlers registered, idle');
  }

  private createSupervisor(kafka: Kafka, topics: string[]): ConsumerSupervisor {
    const o = this.options;
    return new ConsumerSupervisor(
      kafka,
      {
        groupId: this.groupId,
        topics,
        // Durable: a new group (or a committed offset that fell out of range) starts at the earliest offset.
        // Per-instance: the latest, unless the app's StartPositions say where (they are asked on every join).
        fromBeginning: this.fromEarliest,
        fromStart: this.perInstance ? [] : [this.retryTopic],
        sessionTimeoutMs: o.sessionTimeoutMs ?? 30_000,
        heartbeatIntervalMs: o.heartbeatIntervalMs ?? 3_000,
        rebalanceTimeoutMs: o.rebalanceTimeoutMs,
        maxBytesPerPartition: o.maxBytesPerPartition ?? 1_048_576,
        concurrency: o.concurrency ?? 1,
        restartBackoff: o.retry,
      },
      {
        joined: (consumer, assigned) => this.joined(consumer, assigned),
        batchStarted: (topic, partition, lastOffset) =>
          this.progress.fetched(topic, partition, BigInt(lastOffset) + 1n),
        membership: (change) => {
          if (!this.closing) this.setMembership(change);
        },
        eachBatch: async (payload, current) => {
          if (payload.batch.messages.length > 0) this.progress.delivered(payload.batch.topic, payload.batch.partition);
          try {
            await this.runner.run(payload, current);
          } finally {
            if (current() && this.supervisor) this.supervisor.lastFetchAt = Date.now();
          }
        },
      },
      this.tally.stats,
      this.log,
    );
  }

  /** Every join: fresh batch state, the pauses still due applied again, and the app's start positions seeked. */
  private joined(consumer: Consumer, assigned: Record<string, number[]>): void {
    this.runner.joined();
    this.progress.assigned(assigned, Date.now());
    this.scheduler.rejoined();
    const positions = this.positions;
    if (!positions) return;
    for (const [topic, partitions] of Object.entries(assigned)) {
      for (const partition of partitions) {
        const offset = positions.startOffset(topic, partition);
        if (offset !== undefined) consumer.seek({ topic, partition, offset });
      }
    }
  }

  private createWatchdog(kafka: Kafka): StallWatchdog {
    return new StallWatchdog(
      kafka,
      {
        consuming: () => !this.closing && !this.supervisor?.isRestarting && this.state === 'consuming',
        membershipState: () => this.membership.state,
        batchesInFlight: () => this.runner.batchesInFlight,
        lastFetchAt: () => this.supervisor?.lastFetchAt ?? Date.now(),
        pausedPartitions: () => this.scheduler.pausedPartitions(),
        progress: this.progress,
        groupId: this.groupId,
        fromEarliest: this.fromEarliest,
        checksLag: !this.perInstance,
        replace: (why) => this.replaceStalled(why),
      },
      this.options.stallTimeoutMs ?? 45_000,
      this.log,
    );
  }

  private replaceStalled(why: string): void {
    this.tally.stats.stalls += 1;
    this.log.warn(`consumer stalled: ${why}; starting a new one`);
    this.setMembership({ state: 'disconnected', reason: `stalled: ${why}; rejoining` });
    this.state = 'restarting';
    void this.supervisor?.replace(`stalled: ${why}`).finally(() => {
      if (!this.closing) this.state = 'consuming';
    });
  }

  private setMembership(membership: MembershipChange): void {
    this.membership = { since: new Date().toISOString(), ...membership };
  }

  /** Event types are plain strings, the handlers' own keys (Nest's getHandlerByPattern would parse each as JSON). */
  private handlerOf(type: string): EventHandlerFn | undefined {
    const handler = this.getHandlers().get(type);
    if (!handler) return undefined;
    return async (event, context) => {
      const result: unknown = await handler(event, context);
      await lastValueFrom(this.transformToObservable(result), { defaultValue: undefined });
    };
  }

  private requireProducer(): EventProducer {
    if (!this.producer) throw new Error('KafkaEventServer.attach() was not called before listen()');
    return this.producer;
  }

  /** Stops fetching, lets in-flight handlers finish and commit, then leaves the group. */
  async close(): Promise<void> {
    this.closing = true;
    this.state = 'stopping';
    this.shutdown.abort(new Error('the consumer is shutting down'));
    this.scheduler.close();
    clearInterval(this.pruner);
    await this.watchdog?.close();
    if (this.backgroundWait) {
      clearTimeout(this.backgroundWait.timer);
      this.backgroundWait.resolve();
    }
    await this.backgroundStart;
    if (this.idle) {
      clearInterval(this.idle.timer);
      await this.idle.admin.disconnect();
      this.idle = undefined;
    }
    const hadConsumer = this.supervisor?.current !== undefined;
    await this.supervisor?.close();
    if (hadConsumer && this.perInstance && this.kafka) await this.deleteOwnGroup(this.kafka);
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
    return this.supervisor?.current as T;
  }
}
