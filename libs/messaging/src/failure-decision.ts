import { backoffDelay } from './backoff';
import { classifyError } from './errors';
import type { DeadLetterReason } from './failure-headers';
import { InboxBusyError } from './inbox';
import type { RetryPolicy } from './retry-policy';

export interface FailedAttempt {
  /** The attempt that failed: 1 on first delivery. */
  attempt: number;
  error: unknown;
  /** Epoch ms of the first failure of this message (this one, on attempt 1). */
  firstFailedAt: number;
  now: number;
}

/**
 * What to do with a message whose handler failed: retry at a time (recording how many attempts it used up), or
 * dead-letter it with a reason. Pure: no clock, no I/O, so every branch has a unit spec.
 */
export type FailureDecision =
  { kind: 'retry'; at: number; attempts: number } | { kind: 'dead-letter'; reason: DeadLetterReason; attempts: number };

export function decideFailure(
  failed: FailedAttempt,
  policy: RetryPolicy,
  random: () => number = Math.random,
): FailureDecision {
  const { attempt, error, firstFailedAt, now } = failed;
  if (classifyError(error) === 'permanent')
    return { kind: 'dead-letter', reason: 'permanent-error', attempts: attempt };
  // Another transaction holds the event's inbox key: not this event's failure, so no attempt is used up.
  const busy = error instanceof InboxBusyError;
  const attempts = busy ? attempt - 1 : attempt;
  if (!busy && attempt >= policy.maxAttempts) return { kind: 'dead-letter', reason: 'attempts-exhausted', attempts };
  const at = now + backoffDelay(policy, Math.max(1, attempts), random);
  if (at - firstFailedAt > policy.deadlineMs) return { kind: 'dead-letter', reason: 'deadline-exceeded', attempts };
  return { kind: 'retry', at, attempts };
}
