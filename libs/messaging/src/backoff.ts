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
