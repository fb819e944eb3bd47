import type { Consumer, Kafka } from 'kafkajs';
import { errorMessageOf } from '../errors';
import type { InboxStore } from '../inbox';
import { startInboxPruning } from '../inbox-retention';
import { PartitionProgress } from '../partition-progress';
import { PartitionScheduler } from '../partition-scheduler';
import type { EventProducer } from '../producer';
import type { StartPositions } from '../start-positions';
import { BatchRunner } from './batch-runner';
import { FailureRouter } from './failure-router';
import { EventHandlerFn, MessagePipeline } from './message-pipeline';
import type { ConsumerStatus, KafkaEventServerOptions, Membership, MembershipChange, ServerState } from './options';
import { StallWatchdog } from './stall-watchdog';
import { ConsumerTally } from './stats';
import { ConsumerSupervisor } from './supervisor';
import { prepareGroupTopics } from './topology';

/** What the runtime takes from the app once Nest created it. */
export interface RuntimeDeps {
  kafka: Kafka;
  producer: EventProducer;
  inbox: InboxStore;
  positions?: StartPositions;
}

type Log = { log(m: string): void; warn(m: string): void; error(m: string): void; debug(m: string): void };

/**
 * One consumer group's runtime, its parts put together: the topics, the supervisor (one kafkajs consumer's life),
 * the batch runner, the message pipeline, the failure router, the stall watchdog and the counters. KafkaEventServer
 * is its Nest-facing facade.
 */
export class ConsumerRuntime {
  private closing = false;
  /** Aborted by close(): handlers doing long work stop, and their messages are left for the next owner. */
  private readonly shutdown = new AbortController();
  private state: ServerState = 'starting';
  private membership: Membership = { state: 'joining', since: new Date().toISOString(), reason: 'starting' };
  private subscribed: string[] = [];
  readonly tally: ConsumerTally;
  private readonly scheduler: PartitionScheduler;
  private readonly progress = new PartitionProgress();
  readonly router: FailureRouter;
  private readonly runner: BatchRunner;
  private supervisor?: ConsumerSupervisor;
  private watchdog?: StallWatchdog;
  private pruner?: NodeJS.Timeout;
  private deps?: RuntimeDeps;

  constructor(
    private readonly options: KafkaEventServerOptions,
    readonly groupId: string,
    handlerOf: (type: string) => EventHandlerFn | undefined,
    private readonly log: Log,
  ) {
    this.tally = new ConsumerTally(options.consumerGroup, options.observer);
    this.scheduler = new PartitionScheduler(
      () => this.supervisor?.current,
      options.retry,
      Date.now,
      (what, error) => this.log.warn(`could not ${what} (${errorMessageOf(error)}); applied again on the next join`),
    );
    this.router = new FailureRouter(options.consumerGroup, () => this.required().producer, log);
    const pipeline = new MessagePipeline(
      {
        consumerGroup: options.consumerGroup,
        groupId,
        perInstance: this.perInstance,
        retry: options.retry,
        heartbeatIntervalMs: options.heartbeatIntervalMs ?? 3_000,
      },
      {
        handlerOf,
        inbox: () => this.required().inbox,
        scheduler: this.scheduler,
        router: this.router,
        tally: this.tally,
        shutdown: this.shutdown.signal,
        log,
      },
    );
    this.runner = new BatchRunner(
      { commitEveryMessages: options.commitEveryMessages ?? 100, commitIntervalMs: options.commitIntervalMs ?? 1000 },
      {
        handle: (topic, partition, message, heartbeat) => pipeline.handle(topic, partition, message, heartbeat),
        scheduler: this.scheduler,
        running: () => !this.closing,
        log,
      },
    );
  }

  private get perInstance(): boolean {
    return this.options.groupKind === 'per-instance';
  }

  /** Where a partition with no committed offset starts: the lag of such a partition counts from there. */
  get fromEarliest(): boolean {
    return !this.perInstance && (this.options.startFrom ?? 'earliest') === 'earliest';
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** The kafkajs consumer running now, if any. */
  get consumer(): Consumer | undefined {
    return this.supervisor?.current;
  }

  attach(deps: RuntimeDeps): void {
    this.deps = deps;
  }

  private required(): RuntimeDeps {
    if (!this.deps) throw new Error('KafkaEventServer.attach() was not called before listen()');
    return this.deps;
  }

  status(): ConsumerStatus {
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

  setMembership(membership: MembershipChange): void {
    this.membership = { since: new Date().toISOString(), ...membership };
  }

  /** The app has no handlers: it stays up with a broker check (see startIdleCheck). */
  markIdle(): void {
    this.state = 'idle';
    this.setMembership({ state: 'idle', reason: 'no event handlers registered' });
  }

  /** Creates the topics and runs the group's consumer on the topics of the handled events. */
  async start(sources: string[]): Promise<void> {
    const { kafka, inbox, positions } = this.required();
    const { subscribed: topics, retentionHours } = await prepareGroupTopics(
      kafka,
      {
        perInstance: this.perInstance,
        sources,
        retryTopic: this.router.retryTopic,
        deadLetterTopic: this.router.deadLetterTopic,
      },
      { topics: this.options.topics, inboxRetentionHours: inbox.prune ? (this.options.inboxRetentionHours ?? 0) : 0 },
    );
    // No fetch before the app knows where each partition starts.
    await positions?.ready?.();
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
    this.pruner = startInboxPruning(inbox, this.options.consumerGroup, retentionHours, this.log);
    this.log.log(
      this.perInstance
        ? `consuming ${topics.join(', ')} as per-instance group ${this.groupId}, from the latest offset`
        : `consuming ${topics.join(', ')} as group ${this.options.consumerGroup}; dead letters go to ${this.router.deadLetterTopic}`,
    );
  }

  /** After a failed start: a consumer that connected must not linger in the group. */
  async discard(): Promise<void> {
    await this.supervisor?.discard();
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
        fromStart: this.perInstance ? [] : [this.router.retryTopic],
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
    const positions = this.deps?.positions;
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

  /** Stops fetching, lets in-flight handlers finish and commit, then leaves the group; true if a consumer ran. */
  async close(): Promise<boolean> {
    this.closing = true;
    this.state = 'stopping';
    this.shutdown.abort(new Error('the consumer is shutting down'));
    this.scheduler.close();
    clearInterval(this.pruner);
    await this.watchdog?.close();
    const hadConsumer = this.supervisor?.current !== undefined;
    await this.supervisor?.close();
    return hadConsumer;
  }

  stopped(): void {
    this.state = 'stopped';
    this.setMembership({ state: 'stopped', reason: 'the app is shutting down' });
  }
}
