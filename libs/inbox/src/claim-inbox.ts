import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { QueryResultRow } from 'pg';
import { DataSource } from 'typeorm';
import { deleteInChunks } from '@app/database';
import type { InboxKey, InboxOutcome, InboxStore } from '@app/messaging';
import { boundedQuery } from './bounded-query';
import { ClaimHold, ClaimLostError } from './held-claim';
import { InboxBusyError } from './inbox-busy.error';
import { claimQueryTimeoutMs } from './lease-clock';

export interface ClaimInboxOptions {
  /** The schema holding the app's `claims` table. */
  schema: string;
  /** How long a claim holds without renewal; renewed every third of it while the work runs. */
  leaseMs: number;
  /** Bound on each claim statement, waiting for a connection included (default: see claimQueryTimeoutMs). */
  queryTimeoutMs?: number;
  /** Identifies this inbox in the claims table; unique by default, and must stay unique to one ClaimInbox. */
  owner?: string;
}

/**
 * Inbox for long work: instead of one transaction open for the whole handler, a claim row (owner, lease, run number)
 * commits at once, the work runs with no transaction open while the lease is renewed, and completion is recorded at
 * the end. A redelivered event whose claim is completed is skipped; one whose lease ran out (its owner died, froze or
 * lost the database) is run again; one whose lease is live is not run now (InboxBusyError: retried after the
 * holder's lease) — never twice at the same time. A run stops (ClaimLostError) once its lease, counted from the send
 * of its last confirmed renewal, has run out, whatever the renewals do; every claim statement is bounded in time.
 */
export class ClaimInbox implements InboxStore {
  readonly owner: string;
  private readonly queryTimeoutMs: number;
  /**
   * The keys this inbox is claiming or working on now. A claim row of this owner for any other key is left by an
   * attempt that is over (its statement committed but the answer was lost): taken again at once, not waited out.
   */
  private readonly running = new Map<string, { hold?: ClaimHold }>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: ClaimInboxOptions,
  ) {
    this.owner = options.owner ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.queryTimeoutMs = claimQueryTimeoutMs(options.leaseMs, options.queryTimeoutMs);
  }

  private get table(): string {
    return `"${this.options.schema}".claims`;
  }

  async run(
    key: InboxKey,
    work: (transaction?: undefined, lost?: AbortSignal) => Promise<void>,
  ): Promise<InboxOutcome> {
    const id = `${key.consumerGroup}\u0000${key.eventId}`;
    const busy = this.running.get(id);
    if (busy) {
      throw new InboxBusyError(`event ${key.eventId} is being worked on by this consumer (${this.owner}) already`, {
        retryAfterMs: busy.hold?.remainingMs() ?? this.options.leaseMs,
      });
    }
    const entry: { hold?: ClaimHold } = {};
    this.running.set(id, entry);
    try {
      const sentAt = performance.now();
      const claimed = await this.claim(key);
      if (claimed === 'completed') return 'duplicate';
      const hold = new ClaimHold(key.eventId, claimed, this.options.leaseMs, sentAt, () => this.renew(key, claimed));
      entry.hold = hold;
      try {
        // The work gets the hold's signal: aborted the moment this process can no longer be sure it holds the claim.
        await hold.start(() => work(undefined, hold.signal));
        if (hold.signal.aborted) throw hold.signal.reason;
      } catch (error) {
        hold.stop();
        // Let a retry take it at once rather than after the lease.
        await this.release(key, claimed).catch(() => undefined);
        throw hold.signal.aborted ? hold.signal.reason : error;
      }
      hold.stop();
      await this.complete(key, claimed);
      return 'handled';
    } finally {
      entry.hold?.stop();
      this.running.delete(id);
    }
  }

  /** Deletes the group's claims settled (completed, or last leased) longer ago than the retention; in chunks. */
  async prune(consumerGroup: string, retentionHours: number): Promise<number> {
    return deleteInChunks(
      this.dataSource,
      this.table,
      'consumer_group, event_id',
      'consumer_group = $1 AND coalesce(completed_at, lease_until) < now() - make_interval(hours => $2)',
      [consumerGroup, retentionHours],
    );
  }

  private query<R extends QueryResultRow = QueryResultRow>(sql: string, parameters: unknown[]) {
    return boundedQuery<R>(this.dataSource, sql, parameters, this.queryTimeoutMs);
  }

  /**
   * Takes the claim — new, one whose lease ran out and that never completed, or one this owner holds from an attempt
   * that is over — and returns its run number; 'completed' when the event was handled already.
   */
  private async claim(key: InboxKey): Promise<number | 'completed'> {
    const { rows } = await this.query<{ runs: number }>(
      `INSERT INTO ${this.table} AS c (consumer_group, event_id, event_type, owner, lease_until, runs)
       VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5 / 1000.0), 1)
       ON CONFLICT (consumer_group, event_id) DO UPDATE
         SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until, runs = c.runs + 1
         WHERE c.completed_at IS NULL AND (c.lease_until < now() OR c.owner = EXCLUDED.owner)
       RETURNING runs`,
      [key.consumerGroup, key.eventId, key.eventType, this.owner, this.options.leaseMs],
    );
    if (rows[0]) return rows[0].runs;
    const {
      rows: [current],
    } = await this.query<{ completed: boolean; owner: string; lease_until: Date; left_ms: number }>(
      `SELECT completed_at IS NOT NULL AS completed, owner, lease_until,
              greatest(0, extract(epoch FROM lease_until - now()) * 1000)::float8 AS left_ms
         FROM ${this.table} WHERE consumer_group = $1 AND event_id = $2`,
      [key.consumerGroup, key.eventId],
    );
    if (current?.completed) return 'completed';
    // The holder's lease end by the database's clock, as a wait from now: a retry looks again when it has run out.
    throw new InboxBusyError(
      `event ${key.eventId} is claimed by ${current?.owner ?? 'another consumer'} of group ${key.consumerGroup} until ${current?.lease_until?.toISOString() ?? 'its lease ends'}`,
      { retryAfterMs: current ? Math.ceil(current.left_ms) : undefined },
    );
  }

  /** Extends the lease; false when the row is no longer this run's (taken over, or completed by another). */
  private async renew(key: InboxKey, run: number): Promise<boolean> {
    const { rowCount } = await this.query(
      `UPDATE ${this.table} SET lease_until = now() + make_interval(secs => $5 / 1000.0)
        WHERE consumer_group = $1 AND event_id = $2 AND owner = $3 AND runs = $4 AND completed_at IS NULL`,
      [key.consumerGroup, key.eventId, this.owner, run, this.options.leaseMs],
    );
    return rowCount === 1;
  }

  private async release(key: InboxKey, run: number): Promise<void> {
    await this.query(
      `UPDATE ${this.table} SET lease_until = now()
        WHERE consumer_group = $1 AND event_id = $2 AND owner = $3 AND runs = $4 AND completed_at IS NULL`,
      [key.consumerGroup, key.eventId, this.owner, run],
    );
  }

  /** Records completion, only if this run still holds the claim. */
  private async complete(key: InboxKey, run: number): Promise<void> {
    const { rowCount } = await this.query(
      `UPDATE ${this.table} SET completed_at = now()
        WHERE consumer_group = $1 AND event_id = $2 AND owner = $3 AND runs = $4 AND completed_at IS NULL`,
      [key.consumerGroup, key.eventId, this.owner, run],
    );
    if (rowCount !== 1) {
      throw new ClaimLostError(`the claim on event ${key.eventId} passed to another consumer while this one worked`);
    }
  }
}
