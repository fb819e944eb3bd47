import { backoffDelay } from './backoff';
import { classifyError, UnavailableError } from './errors';
import type { DeadLetterReason } from './failure-headers';
import type { RetryPolicy } from './retry-policy';

export interface FailedAttempt {
  /** The attempt that failed: 1 on first delivery. */
  attempt: number;
  error: unknown;
  /** Epoch ms of the first failure of this message (this one, on attempt 1), by this process's clock. */
  firstFailedAt: number;
  now: number;
  /** Retries so far that waited on something unavailable (they used up no attempt); 0 when absent. */
  waits?: number;
}

/**
 * What to do with a message whose handler failed: retry at a time (recording how many attempts and waits it used
 * up), or dead-letter it with a reason. Pure: no clock, no I/O, so every branch has a unit spec.
 */
export type FailureDecision =
  | { kind: 'retry'; at: number; attempts: number; waits: number }
  | { kind: 'dead-letter'; reason: DeadLetterReason; attempts: number };

export function decideFailure(
  failed: FailedAttempt,
  policy: RetryPolicy,
  random: () => number = Math.random,
): FailureDecision {
  const { attempt, error, firstFailedAt, now } = failed;
  const waits = failed.waits ?? 0;
  if (classifyError(error) === 'permanent')
    return { kind: 'dead-letter', reason: 'permanent-error', attempts: attempt };
  if (error instanceof UnavailableError) {
    // Not this event's failure (a claim another consumer holds, a dependency down): no attempt is used up. The
    // wait grows with the waits so far, or follows the holder's lease when it is known, with a little jitter so
    // that replicas waiting on one lease do not all ask at the same instant.
    const attempts = attempt - 1;
    const wait =
      error.retryAfterMs !== undefined && Number.isFinite(error.retryAfterMs)
        ? Math.min(policy.maxMs, Math.max(policy.initialMs / 2, error.retryAfterMs) * (1 + random() * 0.1))
        : backoffDelay(policy, waits + 1, random);
    const at = now + Math.round(wait);
    if (at - firstFailedAt > policy.deadlineMs) return { kind: 'dead-letter', reason: 'deadline-exceeded', attempts };
    return { kind: 'retry', at, attempts, waits: waits + 1 };
  }
  if (attempt >= policy.maxAttempts) return { kind: 'dead-letter', reason: 'attempts-exhausted', attempts: attempt };
  const at = now + backoffDelay(policy, attempt, random);
  if (at - firstFailedAt > policy.deadlineMs)
    return { kind: 'dead-letter', reason: 'deadline-exceeded', attempts: attempt };
  return { kind: 'retry', at, attempts: attempt, waits };
}
