/**
 * How long this process can be sure it still holds a claim, by its own monotonic clock. The database sets
 * `lease_until = now() + lease` while it runs the statement, which is after the statement was sent: counted from
 * the send, the lease here ends no later than the database's, whatever the network delay, however long the answer
 * took, and whatever the two clocks read. A renewal that never answers extends nothing.
 */
export class LeaseClock {
  private deadline: number;
  /**
   * Held as run out a little before the lease ends (a tenth, at most 1 s): a timer fires late on a busy host, and the
   * work must have stopped before another consumer can take the claim, not a moment after.
   */
  readonly marginMs: number;

  /** `sentAt`: when the statement that took the claim was sent (a `performance.now()` reading). */
  constructor(
    readonly leaseMs: number,
    sentAt: number,
  ) {
    this.marginMs = Math.min(1000, leaseMs / 10);
    this.deadline = sentAt + leaseMs - this.marginMs;
  }

  /** A renewal sent at `sentAt` was confirmed. A late answer to an older renewal never shortens the lease. */
  renewed(sentAt: number): void {
    this.deadline = Math.max(this.deadline, sentAt + this.leaseMs - this.marginMs);
  }

  /** Time left at `now`; 0 once the lease may have run out in the database. */
  remainingMs(now: number): number {
    return Math.max(0, this.deadline - now);
  }

  expired(now: number): boolean {
    return now >= this.deadline;
  }
}

/**
 * The bound on every claim statement (claim, renew, release, complete), unless set: a renewal must answer before the
 * next one is due (a third of the lease), and a one-row statement that takes longer than 10 s is not coming back.
 */
export function claimQueryTimeoutMs(leaseMs: number, configured?: number): number {
  if (configured !== undefined) return configured;
  return Math.min(10_000, Math.max(100, Math.floor(leaseMs / 3)));
}
