import type { IHeaders } from 'kafkajs';
import { errorClassOf, errorMessageOf } from './errors';

/**
 * The retry and dead-letter topics of a consumer group. Do not change these names without a migration plan:
 * pending retries and dead letters live in them.
 */
export function retryTopicOf(consumerGroup: string): string {
  return `${consumerGroup}.retry`;
}

export function deadLetterTopicOf(consumerGroup: string): string {
  return `${consumerGroup}.dlt`;
}

/** Headers a failed message carries on the retry and dead-letter topics, beside its own headers. */
export const FailureHeaders = {
  OriginalTopic: 'x-original-topic',
  OriginalPartition: 'x-original-partition',
  OriginalOffset: 'x-original-offset',
  OriginalTimestamp: 'x-original-timestamp',
  ConsumerGroup: 'x-consumer-group',
  /** Attempts made so far, the failed one included. */
  Attempts: 'x-attempts',
  FirstFailedAt: 'x-first-failed-at',
  FailedAt: 'x-failed-at',
  ErrorClass: 'x-error-class',
  ErrorMessage: 'x-error-message',
  /** Retries that waited on something unavailable (a held claim, a dependency down) and used up no attempt. */
  Waits: 'x-waits',
  /**
   * Retry topic only: the time from the first failure to the due time, by the clock of the process that wrote
   * both. The next process counts the retry deadline on from it with its own clock, so no two hosts' clocks are
   * ever compared (x-first-failed-at from a clock ahead would never reach the deadline; from one behind, at once).
   */
  Elapsed: 'x-retry-elapsed-ms',
  /** Retry topic only: epoch milliseconds before which the message must not run again. */
  RetryAt: 'x-retry-at',
  /** Dead-letter topic only: why the message was set aside. */
  Reason: 'x-dead-letter-reason',
  /**
   * Dead-letter topic only: set on a stub, a copy whose value was cut because the broker took the message in no
   * other form; the value's size in bytes. The whole message is still at its original topic, partition and offset
   * for as long as that topic keeps it.
   */
  ValueCut: 'x-value-cut',
  /** On a stub whose own headers did not fit either: how many were left out. */
  HeadersCut: 'x-headers-cut',
  /** Set on a message republished from the dead-letter topic: `<topic>/<partition>/<offset>` it came from. */
  ReplayedFrom: 'x-replayed-from',
} as const;

export type DeadLetterReason =
  | 'invalid-message'
  | 'permanent-error'
  | 'attempts-exhausted'
  | 'deadline-exceeded'
  /** The broker refused the copy for the retry topic in every form (too large once uncompressed). */
  | 'retry-refused';

export interface MessageOrigin {
  topic: string;
  partition: number;
  offset: string;
  timestamp: string;
}

/** What the retry topic remembers of a message between attempts. */
export interface RetryState {
  origin: MessageOrigin;
  attempts: number;
  firstFailedAt: number;
  retryAt: number;
  waits: number;
  /** See FailureHeaders.Elapsed; absent on retries written before it existed. */
  elapsedMs?: number;
}

export interface FailureInput {
  origin: MessageOrigin;
  consumerGroup: string;
  attempts: number;
  firstFailedAt: number;
  error: unknown;
  waits?: number;
}

const FAILURE_HEADER_NAMES = new Set<string>(Object.values(FailureHeaders));
const MAX_ERROR_MESSAGE = 500;

export function headerString(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined) return undefined;
  return typeof first === 'string' ? first : first.toString('utf8');
}

/**
 * One line, bounded, with credentials in URLs masked: error messages travel in headers to other tools and people.
 * No stack trace.
 */
export function safeErrorMessage(error: unknown): string {
  return errorMessageOf(error)
    .replace(/\s*[\r\n]+\s*/g, ' ')
    .replace(/\t/g, ' ')
    .replace(/(\/\/[^:/@\s]*:)[^@\s]*@/g, '$1***@')
    .slice(0, MAX_ERROR_MESSAGE);
}

/** The message's own headers without failure headers of an earlier round. */
export function ownHeaders(headers: IHeaders | undefined): Record<string, string | Buffer> {
  const result: Record<string, string | Buffer> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (FAILURE_HEADER_NAMES.has(name) || value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) result[name] = first;
  }
  return result;
}

export function failureHeaders(input: FailureInput): Record<string, string> {
  return {
    [FailureHeaders.OriginalTopic]: input.origin.topic,
    [FailureHeaders.OriginalPartition]: String(input.origin.partition),
    [FailureHeaders.OriginalOffset]: input.origin.offset,
    [FailureHeaders.OriginalTimestamp]: input.origin.timestamp,
    [FailureHeaders.ConsumerGroup]: input.consumerGroup,
    [FailureHeaders.Attempts]: String(input.attempts),
    [FailureHeaders.FirstFailedAt]: String(input.firstFailedAt),
    [FailureHeaders.FailedAt]: String(Date.now()),
    [FailureHeaders.ErrorClass]: errorClassOf(input.error),
    [FailureHeaders.ErrorMessage]: safeErrorMessage(input.error),
    ...(input.waits ? { [FailureHeaders.Waits]: String(input.waits) } : {}),
  };
}

const DIGITS = /^\d+$/;

/** Reads the retry state of a message on a retry topic; undefined when its headers are missing or malformed. */
export function readRetryState(headers: IHeaders | undefined): RetryState | undefined {
  const get = (name: string) => headerString(headers, name);
  const topic = get(FailureHeaders.OriginalTopic);
  const fields = [
    get(FailureHeaders.OriginalPartition),
    get(FailureHeaders.OriginalOffset),
    get(FailureHeaders.Attempts),
    get(FailureHeaders.FirstFailedAt),
    get(FailureHeaders.RetryAt),
  ];
  if (!topic || fields.some((field) => field === undefined || !DIGITS.test(field))) return undefined;
  const [partition, offset, attempts, firstFailedAt, retryAt] = fields as string[];
  return {
    origin: {
      topic,
      partition: Number(partition),
      offset,
      timestamp: get(FailureHeaders.OriginalTimestamp) ?? '',
    },
    attempts: Number(attempts),
    firstFailedAt: Number(firstFailedAt),
    retryAt: Number(retryAt),
    waits: DIGITS.test(get(FailureHeaders.Waits) ?? '') ? Number(get(FailureHeaders.Waits)) : 0,
    ...(DIGITS.test(get(FailureHeaders.Elapsed) ?? '') ? { elapsedMs: Number(get(FailureHeaders.Elapsed)) } : {}),
  };
}

/**
 * When, by this process's clock, a retry's first failure was: its elapsed time counted back from now, or (a retry
 * written without it) the header's time, never later than now.
 */
export function localFirstFailedAt(prior: RetryState, now: number): number {
  return prior.elapsedMs !== undefined ? now - prior.elapsedMs : Math.min(prior.firstFailedAt, now);
}
