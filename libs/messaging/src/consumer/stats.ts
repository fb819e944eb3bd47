/** How one message ended for its handler: what the metrics count, by event type. */
export type MessageOutcome = 'handled' | 'duplicate' | 'retried' | 'dead-lettered' | 'failed' | 'skipped' | 'dropped';

/** Receives every message's outcome (and the handler's time, when it ran): the app's metrics. */
export interface ConsumerObserver {
  message(group: string, eventType: string, outcome: MessageOutcome, handlerSeconds?: number): void;
}

export interface ConsumerStats {
  handled: number;
  duplicates: number;
  retried: number;
  deadLettered: number;
  skipped: number;
  /** Times this replica joined its group: one at start, one more per rebalance it took part in. */
  groupJoins: number;
  /** Times the kafkajs consumer crashed; each one is restarted (by kafkajs or, when it gives up, by this server). */
  crashes: number;
  /** Per-instance groups: messages whose handler failed or that were invalid, logged and passed over. */
  failed: number;
  /**
   * Messages the broker would not take on the retry or dead-letter topic in any form (not whole, not compressed,
   * not as a stub): passed over with an error line naming them, so that their partition moves on.
   */
  dropped: number;
  /** Fetch requests answered; after the first one following a join, a new group's start offsets are resolved. */
  fetches: number;
  /** Consumers replaced because they stopped fetching (see stallTimeoutMs). */
  stalls: number;
}

const STAT_OF: Partial<Record<MessageOutcome, keyof ConsumerStats>> = {
  handled: 'handled',
  duplicate: 'duplicates',
  retried: 'retried',
  'dead-lettered': 'deadLettered',
  skipped: 'skipped',
  failed: 'failed',
  dropped: 'dropped',
};

/** The counters of one consumer server, and the observer every message outcome is also reported to. */
export class ConsumerTally {
  readonly stats: ConsumerStats = {
    handled: 0,
    duplicates: 0,
    retried: 0,
    deadLettered: 0,
    skipped: 0,
    groupJoins: 0,
    crashes: 0,
    failed: 0,
    dropped: 0,
    fetches: 0,
    stalls: 0,
  };

  constructor(
    private readonly consumerGroup: string,
    private readonly observer?: ConsumerObserver,
  ) {}

  /**
   * One message's outcome. `eventType` is the type the message claims only once it parsed: labels must not grow
   * with what senders write, so an invalid message counts as `(invalid)`.
   */
  outcome(eventType: string, outcome: MessageOutcome, handlerSeconds?: number): void {
    const stat = STAT_OF[outcome];
    if (stat) this.stats[stat] += 1;
    this.observer?.message(this.consumerGroup, eventType, outcome, handlerSeconds);
  }

  snapshot(): ConsumerStats {
    return { ...this.stats };
  }
}
