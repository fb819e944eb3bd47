import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { backoffDelay, BackoffPolicy } from '../backoff';
import { errorClassOf, errorMessageOf } from '../errors';
import { withDeadline } from '../kafka-monitor';
import { withKafkaRetries } from '../topics';
import type { MembershipChange } from './options';
import type { ConsumerStats } from './stats';

/** How the kafkajs consumers of one server are made, subscribed and run. */
export interface ConsumerRecipe {
  groupId: string;
  /** Topics read from the earliest offset when the group has no committed one (or it fell out of range). */
  topics: string[];
  fromBeginning: boolean;
  /** Topics always read from their start (the group's retry topic), whatever `fromBeginning` says. */
  fromStart: string[];
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  rebalanceTimeoutMs?: number;
  maxBytesPerPartition: number;
  concurrency: number;
  restartBackoff: BackoffPolicy;
}

/** What the supervisor tells the rest of the server about the consumer it runs. */
export interface SupervisorEvents {
  joined(consumer: Consumer, assigned: Record<string, number[]>): void;
  batchStarted(topic: string, partition: number, lastOffset: string): void;
  membership(change: MembershipChange): void;
  eachBatch(payload: EachBatchPayload, current: () => boolean): Promise<void>;
}

/** Bounded: a stalled consumer may never finish leaving; the group drops it after its session timeout. */
const DISCONNECT_DEADLINE_MS = 10_000;

/**
 * One consumer server's kafkajs consumer through its life: start, restart after kafkajs gave up on a crash,
 * replacement of a stalled one, retirement of the old one, close. Only the current consumer may run: one that was
 * replaced or retired is never restarted by kafkajs (restartOnFailure asks), its batches stop at once (the batch
 * runner asks `current()`), and if it still (re)joins the group — kafkajs had scheduled its restart before it was
 * retired — it is disconnected on the spot. close() disconnects every consumer not yet gone.
 */
export class ConsumerSupervisor {
  private consumer?: Consumer;
  private readonly retired = new Set<Consumer>();
  private closing = false;
  /** The restart in progress, if any: one at a time, and close() waits for it. */
  private restarting?: Promise<void>;
  private restartWait?: { timer: NodeJS.Timeout; resolve: () => void };
  /** When the current consumer last fetched (an empty long poll counts) or finished a batch. */
  lastFetchAt = Date.now();

  constructor(
    private readonly kafka: Kafka,
    private readonly recipe: ConsumerRecipe,
    private readonly events: SupervisorEvents,
    private readonly stats: ConsumerStats,
    private readonly log: { log(m: string): void; warn(m: string): void; error(m: string): void },
  ) {}

  get current(): Consumer | undefined {
    return this.consumer;
  }

  get isRestarting(): boolean {
    return this.restarting !== undefined;
  }

  /** Consumers replaced and not yet disconnected. */
  get retiredCount(): number {
    return this.retired.size;
  }

  /** Makes, subscribes and runs a new consumer: the current one from now on. */
  async start(): Promise<void> {
    const consumer = this.create();
    this.consumer = consumer;
    await consumer.connect();
    const { topics, fromStart, fromBeginning } = this.recipe;
    const usual = topics.filter((topic) => !fromStart.includes(topic));
    await withKafkaRetries('subscribe', () => consumer.subscribe({ topics: usual, fromBeginning }));
    // The retry topic always from its start: a retry waiting uncommitted on a partition never committed before must
    // not be skipped when a rebalance hands the partition to a replica that would otherwise start at the end.
    if (fromStart.length > 0) {
      await withKafkaRetries('subscribe', () => consumer.subscribe({ topics: fromStart, fromBeginning: true }));
    }
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.recipe.concurrency,
      eachBatch: (payload) => this.events.eachBatch(payload, () => consumer === this.consumer && !this.closing),
    });
  }

  /** A consumer that connected before a failed start must not linger in the group. */
  async discard(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect().catch(() => undefined);
  }

  /** Replaces the current consumer by a new one (it stalled, or kafkajs gave up on it); one replacement at a time. */
  replace(why: string): Promise<void> {
    this.restarting ??= this.restartLoop(why).finally(() => {
      this.restarting = undefined;
    });
    return this.restarting;
  }

  /** Stops every consumer: the current one (its in-flight batches finish and commit) and any not yet gone. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.restartWait) {
      clearTimeout(this.restartWait.timer);
      this.restartWait.resolve();
    }
    await this.restarting;
    for (const old of [...this.retired]) await this.retire(old);
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect();
  }

  private create(): Consumer {
    const r = this.recipe;
    const consumer: Consumer = this.kafka.consumer({
      // kafkajs's default for consumers (5 retries); only the current consumer is ever restarted.
      retry: { retries: 5, restartOnFailure: () => Promise.resolve(consumer === this.consumer && !this.closing) },
      groupId: r.groupId,
      sessionTimeout: r.sessionTimeoutMs,
      heartbeatInterval: r.heartbeatIntervalMs,
      ...(r.rebalanceTimeoutMs !== undefined ? { rebalanceTimeout: r.rebalanceTimeoutMs } : {}),
      maxBytesPerPartition: r.maxBytesPerPartition,
      // A resumed retry partition is fetched after the current long poll returns: keep that poll short.
      maxWaitTimeInMs: 1000,
      allowAutoTopicCreation: false,
    });
    const isCurrent = () => consumer === this.consumer && !this.closing;
    const { events } = consumer;
    consumer.on(events.GROUP_JOIN, ({ payload }) => {
      this.stats.groupJoins += 1;
      if (!isCurrent()) return this.evict(consumer);
      this.lastFetchAt = Date.now();
      this.events.membership({ state: 'joined', assigned: payload.memberAssignment });
      this.events.joined(consumer, payload.memberAssignment);
    });
    consumer.on(events.START_BATCH_PROCESS, ({ payload }) => {
      if (isCurrent()) this.events.batchStarted(payload.topic, payload.partition, payload.lastOffset);
    });
    consumer.on(events.FETCH, () => {
      this.stats.fetches += 1;
      if (isCurrent()) this.lastFetchAt = Date.now();
    });
    consumer.on(events.REBALANCING, () => {
      if (isCurrent()) this.events.membership({ state: 'rebalancing', reason: 'the group is rebalancing' });
    });
    consumer.on(events.STOP, () => {
      if (isCurrent()) this.events.membership({ state: 'stopped', reason: 'consumer stopped' });
    });
    // kafkajs restarts itself after a retriable crash; after any other it stops consuming for good, silently.
    consumer.on(events.CRASH, ({ payload }) => {
      this.stats.crashes += 1;
      if (!isCurrent()) return;
      const what = `${errorClassOf(payload.error)}: ${payload.error.message}`;
      this.events.membership({ state: 'disconnected', reason: `${what}${payload.restart ? '; rejoining' : ''}` });
      if (payload.restart) return;
      this.log.error(`consumer crashed and kafkajs gave up: ${what}`);
      void this.replace(`crashed: ${what}`);
    });
    return consumer;
  }

  /** A consumer that is not the current one joined the group after all: it leaves at once. */
  private evict(consumer: Consumer): void {
    if (this.retired.has(consumer) || consumer === this.consumer) {
      this.log.warn('a replaced consumer rejoined its group; disconnecting it');
    }
    void this.retire(consumer);
  }

  /** Disconnects a consumer that is no longer current; it stays listed until its disconnect returns. */
  private async retire(consumer: Consumer): Promise<void> {
    this.retired.add(consumer);
    const leaving = consumer.disconnect().then(
      () => this.retired.delete(consumer),
      () => this.retired.delete(consumer),
    );
    await withDeadline('disconnecting a replaced consumer', DISCONNECT_DEADLINE_MS, leaving).catch(() => undefined);
  }

  private async restartLoop(why: string): Promise<void> {
    for (let attempt = 1; !this.closing; attempt++) {
      const old = this.consumer;
      // Not current from here on: kafkajs will not restart it, and its batches stop.
      this.consumer = undefined;
      if (old) await this.retire(old);
      if (this.closing) return;
      try {
        await this.start();
        if (this.closing) {
          // close() ran while the new consumer joined: it must not stay in the group behind our back.
          await this.discard();
          return;
        }
        this.lastFetchAt = Date.now();
        this.log.log(`consumer restarted (attempt ${attempt}; ${why})`);
        return;
      } catch (error) {
        const delay = backoffDelay(this.recipe.restartBackoff, attempt);
        this.log.warn(`consumer restart failed (${errorMessageOf(error)}); again in ${delay} ms`);
        await new Promise<void>((resolve) => {
          this.restartWait = { timer: setTimeout(resolve, delay), resolve };
        });
        this.restartWait = undefined;
      }
    }
  }
}
