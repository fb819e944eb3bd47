export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  multiplier?: number;
}

/** Exponential backoff with full jitter, capped: attempt 1 waits up to initialMs, attempt n up to initial·m^(n-1). */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exp = policy.initialMs * Math.pow(policy.multiplier ?? 2, Math.max(0, attempt - 1));
  const capped = Math.min(policy.maxMs, exp);
  return Math.round(capped / 2 + (random() * capped) / 2);
}

/** The longest delay a Node timer takes as given; a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

/** A delay fit for setTimeout: not negative, not past what a timer holds. */
export function timerDelay(ms: number): number {
  return Number.isFinite(ms) ? Math.min(Math.max(0, ms), MAX_TIMER_MS) : 0;
}
