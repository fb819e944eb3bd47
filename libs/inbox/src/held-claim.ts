import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { errorMessageOf, UnavailableError } from '@app/messaging';
import { LeaseClock } from './lease-clock';

/**
 * This process no longer holds the claim of a long job (taken over, or its lease ran out unconfirmed): its work stops
 * and its completion does not count. Not the event's failure: the retry finds the job done or held by its new owner,
 * and uses up no attempt.
 */
export class ClaimLostError extends UnavailableError {
  override readonly name = 'ClaimLostError';
}

/** The claim a handler runs under (claim-mode inbox), as the handler sees it: `heldClaim()`. */
export interface HeldClaim {
  readonly eventId: string;
  /** Which claim of the event this is: 1 for the first run, one more for every later claim (take-over, retry). */
  readonly run: number;
  /** Aborted (reason: ClaimLostError) once this process can no longer be sure it holds the claim. */
  readonly signal: AbortSignal;
  /** How long the claim surely holds from now; 0 once lost. */
  remainingMs(): number;
  /**
   * Renews the lease now and resolves once the database confirmed it (a full lease from the send): called right
   * before a step another run must never see half done (publishing outputs, the result event). Throws ClaimLostError,
   * and stops the work, when the claim is not this process's or the database did not answer in time.
   */
  confirm(): Promise<void>;
}

const current = new AsyncLocalStorage<HeldClaim>();

/** The claim the calling handler runs under, or undefined outside a claim-mode inbox. */
export function heldClaim(): HeldClaim | undefined {
  return current.getStore();
}

/**
 * One run's hold on its claim: renewed every third of the lease, and lost — the signal aborted — the moment the
 * lease counted from the last confirmed renewal's send has run out, whether the renewals failed, were refused or
 * never answered.
 */
export class ClaimHold implements HeldClaim {
  private readonly controller = new AbortController();
  private readonly clock: LeaseClock;
  private renewer?: NodeJS.Timeout;
  private expiry?: NodeJS.Timeout;
  private renewals = 0;

  constructor(
    readonly eventId: string,
    readonly run: number,
    leaseMs: number,
    claimSentAt: number,
    /** Renews in the database: true when still this run's claim, false when not; rejects when unanswered. */
    private readonly renewInStore: () => Promise<boolean>,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.clock = new LeaseClock(leaseMs, claimSentAt);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  remainingMs(): number {
    return this.signal.aborted ? 0 : this.clock.remainingMs(this.now());
  }

  /** Starts renewing and watching the deadline; `within` runs the work with `heldClaim()` answering this hold. */
  start<T>(within: () => Promise<T>): Promise<T> {
    this.renewer = setInterval(() => {
      if (this.renewals === 0) void this.renew().catch(() => undefined);
    }, this.clock.leaseMs / 3);
    this.watchDeadline();
    return current.run(this, within);
  }

  stop(): void {
    clearInterval(this.renewer);
    clearTimeout(this.expiry);
  }

  async confirm(): Promise<void> {
    if (this.signal.aborted) throw this.signal.reason;
    try {
      await this.renew();
    } catch (error) {
      this.lose(`the claim on event ${this.eventId} could not be confirmed (${errorMessageOf(error)})`);
    }
    if (this.signal.aborted) throw this.signal.reason;
  }

  /** One renewal; a refusal loses the claim at once, an error or silence is left to the deadline. */
  private async renew(): Promise<void> {
    this.renewals += 1;
    const sentAt = this.now();
    try {
      if (await this.renewInStore()) this.clock.renewed(sentAt);
      else this.lose(`the claim on event ${this.eventId} passed to another consumer`);
    } finally {
      this.renewals -= 1;
    }
  }

  private watchDeadline(): void {
    const remaining = this.clock.remainingMs(this.now());
    if (remaining > 0) {
      this.expiry = setTimeout(() => this.watchDeadline(), remaining);
      return;
    }
    this.lose(
      `the lease on event ${this.eventId} ran out: no renewal confirmed within ${this.clock.leaseMs} ms of being sent`,
    );
  }

  private lose(why: string): void {
    if (this.signal.aborted) return;
    this.stop();
    this.controller.abort(new ClaimLostError(why));
  }
}
