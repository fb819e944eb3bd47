import type { EntityManager } from 'typeorm';

export interface InboxKey {
  consumerGroup: string;
  eventId: string;
  eventType: string;
  topic: string;
  partition: number;
  offset: string;
}

export type InboxOutcome = 'handled' | 'duplicate';

/**
 * Dedupe by (consumer group, event id). `run` records the event and does the work in one unit: if the work
 * fails, the record is gone and the event will be handled again; if the record exists, the work is skipped.
 * The PostgreSQL stores (transactional and claim) live in `@app/inbox`; the consumer runtime knows only this.
 */
export interface InboxStore {
  /**
   * Runs the work once per key. `transaction` (transactional inbox) commits with the dedupe record; `lost` is
   * aborted when the work can no longer be sure to count (the claim passed on, the transaction's session ended),
   * and the work should stop.
   */
  run(key: InboxKey, work: (transaction?: EntityManager, lost?: AbortSignal) => Promise<void>): Promise<InboxOutcome>;
  /** Deletes records older than the retention; returns how many. */
  prune?(consumerGroup: string, retentionHours: number): Promise<number>;
}

/** For naturally idempotent consumers (deleting a cache key): every delivery runs the work. */
export class NoInbox implements InboxStore {
  async run(_key: InboxKey, work: () => Promise<void>): Promise<InboxOutcome> {
    await work();
    return 'handled';
  }
}
