import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Logger } from '@nestjs/common';
import { CustomTransportStrategy, Server } from '@nestjs/microservices';
import type { Admin, Kafka } from 'kafkajs';
import { lastValueFrom } from 'rxjs';
import { EventType, isEventType, topicOf } from '@app/contracts';
import { backoffDelay } from './backoff';
import { errorMessageOf } from './errors';
import { InboxStore, NoInbox } from './inbox';
import { isBrokerUnreachable } from './kafka-errors';
import type { EventProducer } from './producer';
import type { StartPositions } from './start-positions';
import { ConsumerRuntime } from './consumer/consumer-runtime';
import type { EventHandlerFn } from './consumer/message-pipeline';
import type { ConsumerStatus, KafkaEventServerOptions } from './consumer/options';
import type { ConsumerStats } from './consumer/stats';
import { startIdleCheck } from './consumer/topology';

export type { ConsumerStatus, GroupKind, KafkaEventServerOptions, Membership } from './consumer/options';
export type { ConsumerObserver, ConsumerStats, MessageOutcome } from './consumer/stats';

/**
 * Kafka consumer for `@HandleEvent` handlers, replacing Nest's ServerKafka whose failing handler re-fetches the
 * same offset forever: the Nest-facing facade of the consumer runtime (libs/messaging/src/consumer). It finds the
 * handlers and their topics, starts (or, for apps that serve without Kafka, keeps starting) the group's runtime,
 * and closes it. No failure blocks a partition:
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
  private readonly runtime: ConsumerRuntime;
  private idle?: { admin: Admin; timer: NodeJS.Timeout };
  private readonly listeners = new Map<string, unknown[]>();
  /** joinInBackground: the start still trying; close() waits for it. */
  private backgroundStart?: Promise<void>;
  private backgroundWait?: { timer: NodeJS.Timeout; resolve: () => void };
  /** The group id on the broker. */
  readonly groupId: string;
  private kafka?: Kafka;

  constructor(private readonly options: KafkaEventServerOptions) {
    super();
    this.transportId = options.transportId;
    this.groupId = this.perInstance
      ? `${options.consumerGroup}.${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`
      : options.consumerGroup;
    this.runtime = new ConsumerRuntime(options, this.groupId, (type) => this.handlerOf(type), this.log);
  }

  get stats(): ConsumerStats {
    return this.runtime.tally.stats;
  }

  private get perInstance(): boolean {
    return this.options.groupKind === 'per-instance';
  }

  get retryTopic(): string {
    return this.runtime.router.retryTopic;
  }

  get deadLetterTopic(): string {
    return this.runtime.router.deadLetterTopic;
  }

  /** Where a partition with no committed offset starts: the lag of such a partition counts from there. */
  get fromEarliest(): boolean {
    return this.runtime.fromEarliest;
  }

  /**
   * Hands over what lives in the app's DI container (the Kafka client, the producer, the inbox's DataSource, the
   * start positions), which exists only once Nest created the app around this server. Called before `listen`.
   */
  attach(deps: { kafka: Kafka; producer: EventProducer; inbox?: InboxStore; positions?: StartPositions }): void {
    this.kafka = deps.kafka;
    this.runtime.attach({ ...deps, inbox: deps.inbox ?? new NoInbox() });
  }

  /** Event types this app handles, from its `@HandleEvent` methods. */
  handledTypes(): EventType[] {
    return [...this.getHandlers().keys()].filter(isEventType);
  }

  consumerStatus(): ConsumerStatus {
    return this.runtime.status();
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
    for (let attempt = 1; !this.runtime.isClosing; attempt++) {
      try {
        await this.start();
        return;
      } catch (error) {
        const reason = `${isBrokerUnreachable(error) ? 'waiting for Kafka' : 'start failed'}: ${errorMessageOf(error)}`;
        this.runtime.setMembership({ state: 'joining', reason });
        await this.runtime.discard();
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
    if (!this.kafka) throw new Error('KafkaEventServer.attach() was not called before listen()');
    const unknown = [...this.getHandlers().keys()].filter((p) => !isEventType(p));
    if (unknown.length > 0) throw new Error(`handlers for unknown event types: ${unknown.join(', ')}`);
    const sources = [...new Set(this.handledTypes().map((type) => topicOf(type)))];
    if (sources.length > 0) return this.runtime.start(sources);
    this.idle = await startIdleCheck(this.kafka, this.log);
    this.runtime.markIdle();
    this.log.log('connected to Kafka; no event handlers registered, idle');
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

  /** Stops fetching, lets in-flight handlers finish and commit, then leaves the group. */
  async close(): Promise<void> {
    const closing = this.runtime.close();
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
    const hadConsumer = await closing;
    if (hadConsumer && this.perInstance && this.kafka) await this.deleteOwnGroup(this.kafka);
    this.runtime.stopped();
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
    return this.runtime.consumer as T;
  }
}
