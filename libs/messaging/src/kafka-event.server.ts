import { Logger } from '@nestjs/common';
import { CustomTransportStrategy, Server } from '@nestjs/microservices';
import { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { lastValueFrom } from 'rxjs';
import { EventOf, EventType, InvalidEventError, isEventType, parseEvent, topicOf } from '@app/contracts';
import { BackoffPolicy, backoffDelay } from './backoff';
import { ConsumeContext } from './consume-context';
import { classifyError, errorClassOf, errorMessageOf } from './errors';
import { InboxStore, NoInbox } from './inbox';
import { ensureTopics, TopicSettings } from './topics';

export interface KafkaEventServerOptions {
  consumerGroup: string;
  topics: TopicSettings;
  /** Partitions handled in parallel by this replica (order within a partition is always kept). */
  concurrency?: number;
  retry?: BackoffPolicy;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  maxBytesPerPartition?: number;
  /** Commit at least this often while a batch is being worked through. */
  commitEveryMessages?: number;
  commitIntervalMs?: number;
  /** How a message that can never be handled is set aside; the partition moves on after it returns. */
  onRejected?: (rejection: RejectedMessage) => Promise<void>;
}

/** A message the runner gives up on: invalid input, or a handler's permanent failure. */
export interface RejectedMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: KafkaMessage['headers'];
  timestamp: string;
  consumerGroup: string;
  attempts: number;
  error: unknown;
}

export interface ConsumerStats {
  handled: number;
  duplicates: number;
  rejected: number;
  retries: number;
  skipped: number;
}

type Outcome = 'done' | 'aborted';

/**
 * Kafka consumer for `@HandleEvent` handlers, replacing Nest's ServerKafka whose failing handler re-fetches the
 * same offset forever. Per message: parse and validate at the boundary, dedupe in the inbox, run the handler,
 * then resolve and commit. Invalid input and permanent failures are set aside and the partition moves on;
 * retriable failures are retried with backoff until they pass or the process shuts down, in which case the
 * offset stays uncommitted and the message is redelivered.
 */
export class KafkaEventServer extends Server implements CustomTransportStrategy {
  private readonly log = new Logger(KafkaEventServer.name);
  private consumer?: Consumer;
  private idle?: { admin: Admin; timer: NodeJS.Timeout };
  private closing = false;
  private readonly wakeups = new Set<() => void>();
  private readonly listeners = new Map<string, unknown[]>();
  readonly stats: ConsumerStats = { handled: 0, duplicates: 0, rejected: 0, retries: 0, skipped: 0 };
  private kafka?: Kafka;
  private inbox: InboxStore = new NoInbox();

  constructor(private readonly options: KafkaEventServerOptions) {
    super();
  }

  /**
   * Hands over what lives in the app's DI container (the Kafka client, the inbox's DataSource), which exists only
   * once Nest created the app around this server. Called before `listen`.
   */
  attach(deps: { kafka: Kafka; inbox?: InboxStore }): void {
    this.kafka = deps.kafka;
    if (deps.inbox) this.inbox = deps.inbox;
  }

  /** Event types this app handles, from its `@HandleEvent` methods. */
  handledTypes(): EventType[] {
    return [...this.getHandlers().keys()].filter(isEventType);
  }

  async listen(callback: (error?: unknown) => void): Promise<void> {
    try {
      await this.start();
      callback();
    } catch (error) {
      callback(error);
    }
  }

  private async start(): Promise<void> {
    const { consumerGroup } = this.options;
    const kafka = this.kafka;
    if (!kafka) throw new Error('KafkaEventServer.attach() was not called before listen()');
    const unknown = [...this.getHandlers().keys()].filter((p) => !isEventType(p));
    if (unknown.length > 0) throw new Error(`handlers for unknown event types: ${unknown.join(', ')}`);
    const topics = [...new Set(this.handledTypes().map((type) => topicOf(type)))];
    if (topics.length === 0) {
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
      this.log.log('connected to Kafka; no event handlers registered, idle');
      return;
    }
    await ensureTopics(kafka, topics, this.options.topics);
    const consumer = kafka.consumer({
      groupId: consumerGroup,
      sessionTimeout: this.options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: this.options.heartbeatIntervalMs ?? 3_000,
      maxBytesPerPartition: this.options.maxBytesPerPartition ?? 1_048_576,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    await consumer.connect();
    // fromBeginning: a new group (or a committed offset that fell out of range) starts at the earliest offset.
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.concurrency ?? 1,
      eachBatch: (payload) => this.handleBatch(payload),
    });
    this.log.log(`consuming ${topics.join(', ')} as group ${consumerGroup}`);
  }

  private async handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const heartbeat = () => payload.heartbeat();
    const assigned = () => payload.isRunning() && !payload.isStale();
    const commitEvery = this.options.commitEveryMessages ?? 100;
    const commitIntervalMs = this.options.commitIntervalMs ?? 1000;
    let uncommitted: string | undefined;
    let count = 0;
    let lastCommitAt = Date.now();

    const commit = async () => {
      if (uncommitted === undefined) return;
      const offset = (BigInt(uncommitted) + 1n).toString();
      await payload.commitOffsetsIfNecessary({
        topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset }] }],
      });
      uncommitted = undefined;
      count = 0;
      lastCommitAt = Date.now();
    };

    try {
      for (const message of batch.messages) {
        if (!assigned() || this.closing) break;
        const outcome = await this.handleMessage(batch.topic, batch.partition, message, heartbeat, assigned);
        if (outcome === 'aborted') break;
        payload.resolveOffset(message.offset);
        uncommitted = message.offset;
        count += 1;
        if (count >= commitEvery || Date.now() - lastCommitAt >= commitIntervalMs) await commit();
        await heartbeat();
      }
    } finally {
      await commit().catch((error: unknown) => {
        // Lost the partition in a rebalance: the new owner re-reads from the last commit, the inbox dedupes.
        this.log.warn(`commit on ${batch.topic}[${batch.partition}] failed: ${errorMessageOf(error)}`);
      });
    }
  }

  private async handleMessage(
    topic: string,
    partition: number,
    message: KafkaMessage,
    heartbeat: () => Promise<void>,
    assigned: () => boolean,
  ): Promise<Outcome> {
    const where = `${topic}[${partition}]@${message.offset}`;
    let event: EventOf<EventType>;
    try {
      event = parseEvent(message.value);
    } catch (error) {
      if (!(error instanceof InvalidEventError)) throw error;
      await this.reject(topic, partition, message, 1, error);
      return 'done';
    }
    const handler = this.getHandlerByPattern(event.type);
    if (!handler) {
      // A known event on a shared topic that this group does not act on.
      this.stats.skipped += 1;
      return 'done';
    }

    for (let attempt = 1; ; attempt++) {
      const beat = setInterval(() => {
        heartbeat().catch(() => undefined);
      }, this.options.heartbeatIntervalMs ?? 3_000);
      try {
        const outcome = await this.inbox.run(
          {
            consumerGroup: this.options.consumerGroup,
            eventId: event.id,
            eventType: event.type,
            topic,
            partition,
            offset: message.offset,
          },
          async (transaction) => {
            const context = new ConsumeContext({
              topic,
              partition,
              offset: message.offset,
              key: message.key?.toString('utf8') ?? null,
              consumerGroup: this.options.consumerGroup,
              attempt,
              eventId: event.id,
              correlationId: event.correlationid,
              transaction,
              heartbeat,
            });
            const result: unknown = await handler(event, context);
            await lastValueFrom(this.transformToObservable(result), { defaultValue: undefined });
          },
        );
        if (outcome === 'duplicate') {
          this.stats.duplicates += 1;
          this.log.debug(
            `${where} ${event.type} ${event.id} already handled by ${this.options.consumerGroup}; skipped`,
          );
        } else {
          this.stats.handled += 1;
        }
        return 'done';
      } catch (error) {
        if (classifyError(error) === 'permanent') {
          await this.reject(topic, partition, message, attempt, error);
          return 'done';
        }
        const delay = backoffDelay(this.options.retry ?? { initialMs: 500, maxMs: 30_000 }, attempt);
        this.stats.retries += 1;
        this.log.warn(
          `${where} ${event.type} ${event.id} attempt ${attempt} failed (${errorClassOf(error)}: ${errorMessageOf(error)}); retrying in ${delay} ms`,
        );
        if (!(await this.pauseFor(delay, heartbeat, assigned))) return 'aborted';
      } finally {
        clearInterval(beat);
      }
    }
  }

  private async reject(
    topic: string,
    partition: number,
    message: KafkaMessage,
    attempts: number,
    error: unknown,
  ): Promise<void> {
    this.stats.rejected += 1;
    const rejection: RejectedMessage = {
      topic,
      partition,
      offset: message.offset,
      key: message.key?.toString('utf8') ?? null,
      value: message.value,
      headers: message.headers,
      timestamp: message.timestamp,
      consumerGroup: this.options.consumerGroup,
      attempts,
      error,
    };
    if (this.options.onRejected) {
      await this.options.onRejected(rejection);
    } else {
      this.log.error(
        `rejected ${topic}[${partition}]@${message.offset} after ${attempts} attempt(s): ${errorClassOf(error)}: ${errorMessageOf(error)}`,
      );
    }
  }

  /** Waits out a backoff while keeping the group membership; false when shutdown or a rebalance interrupted it. */
  private async pauseFor(ms: number, heartbeat: () => Promise<void>, assigned: () => boolean): Promise<boolean> {
    const until = Date.now() + ms;
    while (!this.closing && assigned() && Date.now() < until) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.wakeups.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(1000, until - Date.now()));
        this.wakeups.add(done);
      });
      await heartbeat().catch(() => undefined);
    }
    return !this.closing && assigned();
  }

  /** Stops fetching, lets in-flight handlers finish and commit, then leaves the group. */
  async close(): Promise<void> {
    this.closing = true;
    for (const wake of [...this.wakeups]) wake();
    if (this.idle) {
      clearInterval(this.idle.timer);
      await this.idle.admin.disconnect();
      this.idle = undefined;
    }
    if (this.consumer) {
      await this.consumer.disconnect();
      this.consumer = undefined;
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
