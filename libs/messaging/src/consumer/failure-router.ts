import type { KafkaMessage } from 'kafkajs';
import { errorClassOf, errorMessageOf } from '../errors';
import {
  DeadLetterReason,
  deadLetterTopicOf,
  FailureHeaders,
  failureHeaders,
  MessageOrigin,
  ownHeaders,
  retryTopicOf,
  safeErrorMessage,
} from '../failure-headers';
import { isRecordRefused } from '../kafka-errors';
import type { EventProducer, OutgoingRecord } from '../producer';

/** What the retry and dead-letter topics remember of a failed message. */
export interface FailureRecord {
  origin: MessageOrigin;
  attempts: number;
  firstFailedAt: number;
  waits?: number;
}

/** Where a failed message went: the retry topic, the dead-letter topic, or nowhere the broker would take it. */
export type SetAside = 'retried' | 'dead-lettered' | 'dropped';

/** A stub keeps this much of the value, and of the key. */
export const STUB_VALUE_BYTES = 1024;
/** A stub keeps the message's own headers only when they add up to no more than this. */
export const STUB_HEADERS_BYTES = 8192;

/**
 * Sets failed messages aside on the group's retry or dead-letter topic, with the failure headers, and resolves once
 * the broker acknowledged the copy. A copy is the exact key, value and own headers; when the broker refuses it for
 * its size (a record another producer sent compressed, over the limit once uncompressed; a record near the limit
 * plus the failure headers), the copy is sent compressed; a dead letter it still refuses goes as a stub (value and
 * key cut, origin in the headers); and one it refuses even so is dropped with an error line that names it — the
 * partition moves on. Any other failure (the broker away) is thrown: the caller fetches the message again later.
 */
export class FailureRouter {
  readonly retryTopic: string;
  readonly deadLetterTopic: string;

  constructor(
    private readonly consumerGroup: string,
    private readonly producer: () => EventProducer,
    private readonly log: { error(message: string): void; warn(message: string): void },
  ) {
    this.retryTopic = retryTopicOf(consumerGroup);
    this.deadLetterTopic = deadLetterTopicOf(consumerGroup);
  }

  async retry(message: KafkaMessage, failure: FailureRecord, error: unknown, retryAt: number): Promise<SetAside> {
    const headers = {
      ...this.failureHeaders(failure, error),
      [FailureHeaders.RetryAt]: String(retryAt),
      [FailureHeaders.Elapsed]: String(Math.max(0, retryAt - failure.firstFailedAt)),
    };
    if (await this.publish(message, this.retryTopic, headers)) return 'retried';
    // Its retry could never be fetched as it is: it is kept on the dead-letter topic instead, as whole as the broker
    // takes it.
    this.log.warn(
      `${where(failure.origin)} could not be put on ${this.retryTopic} in any form the broker takes; dead-lettering it`,
    );
    return this.deadLetter(message, failure, error, 'retry-refused');
  }

  async deadLetter(
    message: KafkaMessage,
    failure: FailureRecord,
    error: unknown,
    reason: DeadLetterReason,
  ): Promise<SetAside> {
    const headers = { ...this.failureHeaders(failure, error), [FailureHeaders.Reason]: reason };
    const cause = `${errorClassOf(error)}: ${errorMessageOf(error)}`;
    const attempts = `${reason} after ${failure.attempts} attempt(s)`;
    const sent = await this.publish(message, this.deadLetterTopic, headers, true);
    if (sent === 'stub') {
      this.log.error(
        `${where(failure.origin)} → ${this.deadLetterTopic} as a stub (${attempts}; its ${message.value?.length ?? 0}-byte value did not fit in any form, the whole message stays at its origin): ${cause}`,
      );
      return 'dead-lettered';
    }
    if (sent) {
      this.log.error(`${where(failure.origin)} → ${this.deadLetterTopic} (${attempts}): ${cause}`);
      return 'dead-lettered';
    }
    this.log.error(
      `${where(failure.origin)} DROPPED: the broker refused it on ${this.deadLetterTopic} whole, compressed and as a stub (${attempts}; key ${JSON.stringify(message.key?.toString('utf8').slice(0, 100) ?? null)}, ${message.value?.length ?? 0} value bytes): ${cause}`,
    );
    return 'dropped';
  }

  private failureHeaders(failure: FailureRecord, error: unknown): Record<string, string> {
    return failureHeaders({ ...failure, consumerGroup: this.consumerGroup, error });
  }

  /** true (or 'stub') once acknowledged; false when the broker refused every form; throws on any other failure. */
  private async publish(
    message: KafkaMessage,
    topic: string,
    headers: Record<string, string>,
    stubAllowed = false,
  ): Promise<boolean | 'stub'> {
    const copy = copyOf(message, topic, headers);
    let refusal: unknown;
    for (const compress of [false, true]) {
      try {
        await this.producer().send([copy], { compress });
        return true;
      } catch (error) {
        if (!isRecordRefused(error)) throw error;
        refusal ??= error;
      }
    }
    if (!stubAllowed) return false;
    try {
      await this.producer().send([stubOf(message, topic, headers, refusal)], { compress: true });
      return 'stub';
    } catch (error) {
      if (!isRecordRefused(error)) throw error;
      return false;
    }
  }
}

function where(origin: MessageOrigin): string {
  return `${origin.topic}[${origin.partition}]@${origin.offset}`;
}

/** The message's exact key, value and own headers, plus the failure headers. */
export function copyOf(message: KafkaMessage, topic: string, headers: Record<string, string>): OutgoingRecord {
  return {
    topic,
    key: message.key?.toString('utf8') ?? null,
    value: message.value,
    headers: { ...ownHeaders(message.headers), ...headers },
  };
}

/**
 * What the dead-letter topic keeps of a message the broker takes in no fuller form: the first STUB_VALUE_BYTES of
 * its value and of its key, its own headers when they are small, the failure headers, and the value's size.
 */
export function stubOf(
  message: KafkaMessage,
  topic: string,
  headers: Record<string, string>,
  refusal: unknown,
): OutgoingRecord {
  const own = ownHeaders(message.headers);
  const ownBytes = Object.entries(own).reduce((sum, [name, value]) => sum + name.length + value.length, 0);
  const keep = ownBytes <= STUB_HEADERS_BYTES;
  const key = message.key?.toString('utf8') ?? null;
  return {
    topic,
    key: key === null ? null : key.slice(0, STUB_VALUE_BYTES),
    value: message.value === null ? null : message.value.subarray(0, STUB_VALUE_BYTES),
    headers: {
      ...(keep ? own : {}),
      ...headers,
      [FailureHeaders.ValueCut]: String(message.value?.length ?? 0),
      ...(keep ? {} : { [FailureHeaders.HeadersCut]: String(Object.keys(own).length) }),
      [FailureHeaders.ErrorMessage]: safeErrorMessage(
        `${headers[FailureHeaders.ErrorMessage] ?? ''} (set aside as a stub: ${errorMessageOf(refusal)})`.trim(),
      ),
    },
  };
}
