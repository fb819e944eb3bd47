import type { KafkaMessage } from 'kafkajs';
import { EventOf, EventType, InvalidEventError, parseEvent } from '@app/contracts';
import { withLogFields } from '@app/telemetry';
import { ConsumeContext } from '../consume-context';
import { errorClassOf, errorMessageOf, RetriableError } from '../errors';
import { decideFailure } from '../failure-decision';
import { localFirstFailedAt, MessageOrigin, readRetryState, RetryState } from '../failure-headers';
import type { InboxStore } from '../inbox';
import type { PartitionScheduler } from '../partition-scheduler';
import type { RetryPolicy } from '../retry-policy';
import { withConsumeSpan, withMessageTrace } from '../tracing';
import type { FailureRecord, FailureRouter, SetAside } from './failure-router';
import type { ConsumerTally, MessageOutcome } from './stats';

/** done: resolve the offset; wait: pause the partition until then; leave: stop here, uncommitted (shutting down). */
export type Outcome = { kind: 'done' } | { kind: 'wait'; until: number } | { kind: 'leave' };

export const DONE: Outcome = { kind: 'done' };

/** A handler as Nest registered it: the event and its context in, whatever it returns awaited to the end. */
export type EventHandlerFn = (event: EventOf<EventType>, context: ConsumeContext) => Promise<void>;

export interface PipelineSettings {
  consumerGroup: string;
  /** The group id on the broker (a per-instance group's own suffix included), for log lines. */
  groupId: string;
  perInstance: boolean;
  retry: RetryPolicy;
  heartbeatIntervalMs: number;
}

export interface PipelineParts {
  handlerOf(type: string): EventHandlerFn | undefined;
  inbox(): InboxStore;
  scheduler: PartitionScheduler;
  router: FailureRouter;
  tally: ConsumerTally;
  /** Aborted by the shutdown: handlers doing long work stop, and their messages are left for the next owner. */
  shutdown: AbortSignal;
  log: { log(message: string): void; warn(message: string): void; debug(message: string): void };
}

const SET_ASIDE_OUTCOME: Record<SetAside, MessageOutcome> = {
  retried: 'retried',
  'dead-lettered': 'dead-lettered',
  dropped: 'dropped',
};

/**
 * One message, from bytes to outcome: a retry's due time, decoding and validation at the boundary, the handler
 * found by event type, the inbox (dedupe) around the handler, and what a failure means — retry, dead letter, or
 * (per-instance groups) pass over. Throws only when a failed message could not be set aside (the broker away).
 */
export class MessagePipeline {
  constructor(
    private readonly settings: PipelineSettings,
    private readonly parts: PipelineParts,
  ) {}

  async handle(
    topic: string,
    partition: number,
    message: KafkaMessage,
    heartbeat: () => Promise<void>,
  ): Promise<Outcome> {
    const { router, scheduler, tally } = this.parts;
    let prior: RetryState | undefined;
    if (topic === router.retryTopic) {
      prior = readRetryState(message.headers);
      if (!prior) {
        const origin = { topic, partition, offset: message.offset, timestamp: message.timestamp };
        const error = new InvalidEventError('invalid-envelope', 'message on the retry topic lacks its retry headers');
        const went = await router.deadLetter(
          message,
          { origin, attempts: 1, firstFailedAt: Date.now() },
          error,
          'invalid-message',
        );
        tally.outcome('(invalid)', SET_ASIDE_OUTCOME[went]);
        return DONE;
      }
      const until = scheduler.retryDueAt(topic, partition, message.offset, prior.retryAt);
      if (until > Date.now()) return { kind: 'wait', until };
      scheduler.retryTaken(topic, partition);
    }
    const origin: MessageOrigin = prior?.origin ?? {
      topic,
      partition,
      offset: message.offset,
      timestamp: message.timestamp,
    };
    const attempt = (prior?.attempts ?? 0) + 1;
    const firstFailedAt = prior ? localFirstFailedAt(prior, Date.now()) : Date.now();
    const where = `${origin.topic}[${origin.partition}]@${origin.offset}`;

    let event: EventOf<EventType>;
    try {
      event = parseEvent(message.value);
    } catch (error) {
      if (!(error instanceof InvalidEventError)) throw error;
      if (this.settings.perInstance) return this.passOver(where, '(invalid)', error);
      const went = await router.deadLetter(
        message,
        { origin, attempts: attempt, firstFailedAt },
        error,
        'invalid-message',
      );
      // Not the type the message claims: labels must not grow with what senders write.
      tally.outcome('(invalid)', SET_ASIDE_OUTCOME[went]);
      return DONE;
    }
    const handler = this.parts.handlerOf(event.type);
    if (!handler) {
      // A known event on a shared topic that this group does not act on.
      tally.outcome(event.type, 'skipped');
      return DONE;
    }
    // Every line logged while it is handled names the event and the trace the message carries.
    const fields = { correlationId: event.correlationid, eventId: event.id, eventType: event.type };
    return withLogFields(fields, () =>
      withMessageTrace(message.headers, () =>
        this.run(event, handler, { message, origin, attempt, firstFailedAt, prior, where, heartbeat }),
      ),
    );
  }

  private async run(
    event: EventOf<EventType>,
    handler: EventHandlerFn,
    m: {
      message: KafkaMessage;
      origin: MessageOrigin;
      attempt: number;
      firstFailedAt: number;
      prior?: RetryState;
      where: string;
      heartbeat: () => Promise<void>;
    },
  ): Promise<Outcome> {
    const { consumerGroup, retry } = this.settings;
    const { tally, router, shutdown, log } = this.parts;
    const { origin, attempt, firstFailedAt, where } = m;
    const beat = setInterval(() => {
      m.heartbeat().catch(() => undefined);
    }, this.settings.heartbeatIntervalMs);
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const span = { ...origin, consumerGroup, eventType: event.type, eventId: event.id, attempt };
      const { topic, partition, offset } = origin;
      const key = { consumerGroup, eventId: event.id, eventType: event.type, topic, partition, offset };
      const outcome = await withConsumeSpan(m.message.headers, span, () =>
        this.parts.inbox().run(key, async (transaction, lost) => {
          const context = new ConsumeContext({
            topic: origin.topic,
            partition: origin.partition,
            offset: origin.offset,
            key: m.message.key?.toString('utf8') ?? null,
            consumerGroup,
            attempt,
            eventId: event.id,
            correlationId: event.correlationid,
            transaction,
            heartbeat: m.heartbeat,
            signal: lost ? AbortSignal.any([shutdown, lost]) : shutdown,
            finalAttempt: () =>
              decideFailure(
                { attempt, error: new RetriableError('would fail now'), firstFailedAt, now: Date.now() },
                retry,
                () => 1,
              ).kind === 'dead-letter',
          });
          await handler(event, context);
        }),
      );
      if (outcome === 'duplicate') {
        tally.outcome(event.type, 'duplicate');
        log.debug(`${where} ${event.type} ${event.id} already handled by ${consumerGroup}; skipped`);
      } else {
        tally.outcome(event.type, 'handled', seconds());
        if (attempt > 1) log.log(`${where} ${event.type} ${event.id} handled on attempt ${attempt}`);
      }
      return DONE;
    } catch (error) {
      const took = seconds();
      if (shutdown.aborted) {
        // Stopped by the shutdown, not failed: no retry, no commit; the next owner of the partition runs it again.
        log.log(`${where} ${event.type} ${event.id} stopped by the shutdown; left for the next owner`);
        return { kind: 'leave' };
      }
      if (this.settings.perInstance)
        return this.passOver(`${where} ${event.type} ${event.id}`, event.type, error, took);
      const decision = decideFailure({ attempt, error, firstFailedAt, now: Date.now(), waits: m.prior?.waits }, retry);
      const failure: FailureRecord = {
        origin,
        attempts: decision.attempts,
        firstFailedAt,
        waits: decision.kind === 'retry' ? decision.waits : m.prior?.waits,
      };
      if (decision.kind === 'dead-letter') {
        const went = await router.deadLetter(m.message, failure, error, decision.reason);
        tally.outcome(event.type, SET_ASIDE_OUTCOME[went], took);
        return DONE;
      }
      const went = await router.retry(m.message, failure, error, decision.at);
      tally.outcome(event.type, SET_ASIDE_OUTCOME[went], took);
      if (went === 'retried') {
        log.warn(
          `${where} ${event.type} ${event.id} attempt ${attempt}/${retry.maxAttempts} failed (${errorClassOf(error)}: ${errorMessageOf(error)}); retry in ${decision.at - Date.now()} ms`,
        );
      }
      return DONE;
    } finally {
      clearInterval(beat);
    }
  }

  /** Per-instance groups have no retry or dead-letter topics: a failure is logged and counted, and the partition goes on. */
  private passOver(where: string, eventType: string, error: unknown, handlerSeconds?: number): Outcome {
    this.parts.tally.outcome(eventType, 'failed', handlerSeconds);
    this.parts.log.warn(
      `${where} failed in per-instance group ${this.settings.groupId}, passed over: ${errorClassOf(error)}: ${errorMessageOf(error)}`,
    );
    return DONE;
  }
}
