import type { ConsumerConfig } from '@app/config';
import type { BackoffPolicy } from './backoff';

/** How a consumer group retries a retriable failure before the message goes to its dead-letter topic. */
export interface RetryPolicy extends BackoffPolicy {
  /** Attempts in all, the first delivery included. */
  maxAttempts: number;
  /** No retry is scheduled later than this long after the first failure. */
  deadlineMs: number;
}

export function retryPolicyOf(config: ConsumerConfig): RetryPolicy {
  return {
    initialMs: config.CONSUMER_RETRY_INITIAL_MS,
    maxMs: config.CONSUMER_RETRY_MAX_MS,
    multiplier: config.CONSUMER_RETRY_MULTIPLIER,
    maxAttempts: config.CONSUMER_MAX_ATTEMPTS,
    deadlineMs: config.CONSUMER_RETRY_DEADLINE_MS,
  };
}
