import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { DataSource, QueryRunner } from 'typeorm';
import { errorMessageOf, InboxKey, InboxOutcome, InboxStore, RetriableError } from '@app/messaging';
import { InboxBusyError } from './inbox-busy.error';

/** The claim of a long job was taken over (its lease ran out while it ran): its completion does not count. */
export class ClaimLostError extends RetriableError {
  override readonly name = 'ClaimLostError';
}

export interface ClaimInboxOptions {
  /** The schema holding the app's `claims` table. */
  schema: string;
  /** How long a claim holds without renewal; renewed every third of it while the work runs. */
  leaseMs: number;
  /** Identifies this process in the claims table; unique by default. */
  owner?: string;
}

/**
 * Inbox for long work: instead of one transaction open for the whole handler, a claim row (owner, lease) commits at
 * once, the work runs with no transaction open while the lease is renewed, and completion is recorded at the end.
 * A redelivered event whose claim is completed is skipped; one whose lease ran out (its owner died or froze) is run
 * again; one whose lease is live is not run now (InboxBusyError: retried later) — never twice at the same time.
 */
export class ClaimInbox implements InboxStore {
  readonly owner: string;

  constructor(
    private readonly dataSource: DataSource,
    private readonly options: ClaimInboxOptions,
  ) {
    this.owner = options.owner ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  }

  private get table(): string {
    return `"${this.options.schema}".claims`;
  }

  async run(
    key: InboxKey,
    work: (transaction?: undefined, lost?: AbortSignal) => Promise<void>,
  ): Promise<InboxOutcome> {
    const claimed = await this.claim(key);
    if (claimed === 'completed') return 'duplicate';
    // Aborted the moment this process can no longer be sure it holds the claim: a renewal found the row taken over,
    // or no renewal has succeeded for a whole lease. The work stops instead of running beside the next owner's.
    const lost = new AbortController();
    let heldUntil = Date.now() + this.options.leaseMs;
    const renew = setInterval(() => {
      void this.renew(key).then(
        (held) => {
          if (held) heldUntil = Date.now() + this.options.leaseMs;
          else lost.abort(new ClaimLostError(`the claim on event ${key.eventId} passed to another consumer`));
        },
        (error: unknown) => {
          if (Date.now() < heldUntil) return;
          lost.abort(
            new ClaimLostError(
              `the lease on event ${key.eventId} could not be renewed for ${this.options.leaseMs} ms (${errorMessageOf(error)})`,
            ),
          );
        },
      );
    }, this.options.leaseMs / 3);
    try {
      await work(undefined, lost.signal);
      if (lost.signal.aborted) throw lost.signal.reason;
    } catch (error) {
      clearInterval(renew);
      // Let a retry take it at once rather than after the lease.
      await this.release(key).catch(() => undefined);
      throw lost.signal.aborted ? lost.signal.reason : error;
    }
    clearInterval(renew);
    await this.complete(key);
    return 'handled';
  }

  /** Takes the claim: new, or one whose lease ran out and that never completed. */
  private async claim(key: InboxKey): Promise<'claimed' | 'completed'> {
    const [taken] = await this.dataSource.query<{ owner: string }[]>(
      `INSERT INTO ${this.table} AS c (consumer_group, event_id, event_type, owner, lease_until, runs)
       VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5 / 1000.0), 1)
       ON CONFLICT (consumer_group, event_id) DO UPDATE
         SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until, runs = c.runs + 1
         WHERE c.completed_at IS NULL AND c.lease_until < now()
       RETURNING owner`,
      [key.consumerGroup, key.eventId, key.eventType, this.owner, this.options.leaseMs],
    );
    if (taken) return 'claimed';
    const [current] = await this.dataSource.query<{ completed: boolean; owner: string; lease_until: Date }[]>(
      `SELECT completed_at IS NOT NULL AS completed, owner, lease_until FROM ${this.table}
        WHERE consumer_group = $1 AND event_id = $2`,
      [key.consumerGroup, key.eventId],
    );
    if (current?.completed) return 'completed';
    // The holder's lease end by the database's clock, as a wait from now: a retry looks again when it has run out.
    const leaseEnd = current?.lease_until ? new Date(current.lease_until).getTime() : undefined;
    throw new InboxBusyError(
      `event ${key.eventId} is claimed by ${current?.owner ?? 'another consumer'} of group ${key.consumerGroup} until ${current?.lease_until?.toISOString() ?? 'its lease ends'}`,
      { retryAfterMs: leaseEnd === undefined ? undefined : Math.max(0, leaseEnd - Date.now()) },
    );
  }

  /** Extends the lease; false when the row is no longer this process's (taken over, or completed by another). */
  private async renew(key: InboxKey): Promise<boolean> {
    const [, updated] = await this.dataSource.query<[unknown, number]>(
      `UPDATE ${this.table} SET lease_until = now() + make_interval(secs => $4 / 1000.0)
        WHERE consumer_group = $1 AND event_id = $2 AND owner = $3 AND completed_at IS NULL`,
      [key.consumerGroup, key.eventId, this.owner, this.options.leaseMs],
    );
    return updated === 1;
  }

  private async release(key: InboxKey): Promise<void> {
    await this.dataSource.query(
      `UPDATE ${this.table} SET lease_until = now()
        WHERE consumer_group = $1 AND event_id = $2 AND owner = $3 AND completed_at IS NULL`,
      [key.consumerGroup, key.eventId, this.owner],
    );
  }

  /** Records completion, only if this process still holds the claim. */
  private async complete(key: InboxKey): Promise<void> {
    const [, updated] = await this.dataSource.query<[unknown, number]>(
      `UPDATE ${this.table} SET completed_at = now()
        WHERE consumer_group = $1 AND event_id = $2 AND owner = $3 AND completed_at IS NULL`,
      [key.consumerGroup, key.eventId, this.owner],
    );
    if (updated !== 1) {
      throw new ClaimLostError(`the claim on event ${key.eventId} passed to another consumer while this one worked`);
    }
  }
}

/** DDL for an app's claims table (claim-mode inbox); called from that app's migration. */
export async function createClaimTable(runner: QueryRunner, schema: string): Promise<void> {
  await runner.query(`
    CREATE TABLE "${schema}".claims (
      consumer_group text NOT NULL,
      event_id uuid NOT NULL,
      event_type text NOT NULL,
      owner text NOT NULL,
      lease_until timestamptz NOT NULL,
      runs int NOT NULL DEFAULT 1,
      claimed_at timestamptz NOT NULL DEFAULT now(),
      completed_at timestamptz,
      PRIMARY KEY (consumer_group, event_id)
    )`);
}
