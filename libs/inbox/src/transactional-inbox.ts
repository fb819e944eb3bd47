import { Column, DataSource, Entity, EntityManager, PrimaryColumn, QueryRunner } from 'typeorm';
import { deleteInChunks, PgErrorCode, pgErrorOf } from '@app/database';
import { errorMessageOf, RetriableError } from '@app/messaging';
import type { InboxKey, InboxOutcome, InboxStore } from '@app/messaging';
import { InboxBusyError } from './inbox-busy.error';

/** The inbox transaction's session ended (idle timeout of a frozen process, a restart, a cut connection). */
export class InboxTransactionLostError extends RetriableError {
  override readonly name = 'InboxTransactionLostError';
}

@Entity({ name: 'inbox' })
export class InboxRecord {
  @PrimaryColumn({ name: 'consumer_group', type: 'text' })
  consumerGroup!: string;

  @PrimaryColumn({ name: 'event_id', type: 'uuid' })
  eventId!: string;

  @Column({ name: 'event_type', type: 'text' })
  eventType!: string;

  @Column({ type: 'text' })
  topic!: string;

  @Column({ type: 'int' })
  partition!: number;

  @Column({ type: 'bigint' })
  offset!: string;

  @Column({ name: 'processed_at', type: 'timestamptz', default: () => 'now()' })
  processedAt!: Date;
}

/**
 * Inbox in the app's own schema. The row is inserted first, inside the transaction that stays open while the
 * handler runs: a second consumer of the same event (rebalance, replay) blocks on the uncommitted key and then
 * sees it as a duplicate, so the side effect runs at most once per committed row.
 *
 * While the handler runs, a `SELECT 1` on the transaction every quarter of the idle-transaction timeout keeps the
 * session from being ended for idleness, however long the handler waits. It runs in this process: a frozen process
 * stops keeping its transaction, and PostgreSQL ends it after the idle timeout as before. A failed keep-alive (or
 * none succeeding for a whole idle timeout) aborts the work's `lost` signal.
 */
export class TypeOrmInbox implements InboxStore {
  /**
   * `lockTimeoutMs` bounds the wait on a key another transaction holds; past it, InboxBusyError.
   * `idleTransactionTimeoutMs` is the sessions' idle_in_transaction_session_timeout (by default the data source's).
   */
  constructor(
    private readonly dataSource: DataSource,
    private readonly lockTimeoutMs = 5000,
    private readonly idleTransactionTimeoutMs = idleTransactionTimeoutOf(dataSource),
  ) {}

  async run(
    key: InboxKey,
    work: (transaction?: EntityManager, lost?: AbortSignal) => Promise<void>,
  ): Promise<InboxOutcome> {
    try {
      return await this.dataSource.transaction((manager) => this.runIn(manager, key, work));
    } catch (error) {
      if (pgErrorOf(error).code === PgErrorCode.LockNotAvailable) {
        throw new InboxBusyError(
          `event ${key.eventId} is held by another transaction of group ${key.consumerGroup} (waited ${this.lockTimeoutMs} ms)`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  async prune(consumerGroup: string, retentionHours: number): Promise<number> {
    return deleteInChunks(
      this.dataSource,
      this.table(),
      'consumer_group, event_id',
      'consumer_group = $1 AND processed_at < now() - make_interval(hours => $2)',
      [consumerGroup, retentionHours],
    );
  }

  private table(): string {
    const metadata = this.dataSource.getMetadata(InboxRecord);
    return `"${metadata.schema ?? 'public'}"."${metadata.tableName}"`;
  }

  private async runIn(
    manager: EntityManager,
    key: InboxKey,
    work: (transaction?: EntityManager, lost?: AbortSignal) => Promise<void>,
  ): Promise<InboxOutcome> {
    // Bounded wait on a key another transaction holds: a consumer frozen mid-transaction cannot stall this one.
    await manager.query(`SET LOCAL lock_timeout = ${Math.round(this.lockTimeoutMs)}`);
    const inserted = await manager
      .createQueryBuilder()
      .insert()
      .into(InboxRecord)
      .values({
        consumerGroup: key.consumerGroup,
        eventId: key.eventId,
        eventType: key.eventType,
        topic: key.topic,
        partition: key.partition,
        offset: key.offset,
      })
      .orIgnore()
      .returning(['eventId'])
      .execute();
    if ((inserted.raw as unknown[]).length === 0) return 'duplicate';
    // The bound is for the inbox key only; the handler's own statements wait as they normally would.
    await manager.query('SET LOCAL lock_timeout = DEFAULT');
    const keepAlive = keepTransactionAlive(manager, key, this.idleTransactionTimeoutMs);
    try {
      await work(manager, keepAlive.lost);
    } catch (error) {
      throw keepAlive.lost.aborted ? keepAlive.lost.reason : error;
    } finally {
      keepAlive.stop();
    }
    // Work that succeeded commits even if a keep-alive failed meanwhile: its side effect may be done, and only
    // PostgreSQL knows whether the session still is; a gone one fails the COMMIT.
    return 'handled';
  }
}

function idleTransactionTimeoutOf(dataSource: DataSource): number {
  const extra = (dataSource.options as { extra?: { idle_in_transaction_session_timeout?: unknown } }).extra;
  const ms = Number(extra?.idle_in_transaction_session_timeout);
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

/** Without an idle timeout nothing ends a quiet session; the keep-alive then only watches that it is still there. */
const KEEP_ALIVE_WITHOUT_IDLE_TIMEOUT_MS = 10_000;

function keepTransactionAlive(
  manager: EntityManager,
  key: InboxKey,
  idleTimeoutMs: number,
): { lost: AbortSignal; stop: () => void } {
  const lost = new AbortController();
  let aliveAt = Date.now();
  let inFlight = false;
  const timer = setInterval(
    () => {
      if (lost.signal.aborted) return;
      if (idleTimeoutMs > 0 && Date.now() - aliveAt >= idleTimeoutMs) {
        // Frozen, or the connection hung: PostgreSQL may have ended the session already.
        lost.abort(
          new InboxTransactionLostError(
            `no statement on the inbox transaction of event ${key.eventId} succeeded for ${Date.now() - aliveAt} ms (idle-transaction timeout ${idleTimeoutMs} ms)`,
          ),
        );
        return;
      }
      if (inFlight) return;
      inFlight = true;
      const sentAt = Date.now();
      manager.query('SELECT 1').then(
        () => {
          aliveAt = sentAt;
          inFlight = false;
        },
        (error: unknown) => {
          inFlight = false;
          lost.abort(
            new InboxTransactionLostError(
              `the inbox transaction of event ${key.eventId} ended: ${errorMessageOf(error)}`,
              { cause: error },
            ),
          );
        },
      );
    },
    idleTimeoutMs > 0 ? idleTimeoutMs / 4 : KEEP_ALIVE_WITHOUT_IDLE_TIMEOUT_MS,
  );
  return { lost: lost.signal, stop: () => clearInterval(timer) };
}

/**
 * A statement on the transaction, for a step that must not run once the transaction may be gone (handing a message
 * to an SMTP server). Resolves to a check that stays true while PostgreSQL cannot have ended the session for idleness
 * since (half the idle timeout from when the statement was sent); a process frozen after the statement fails it.
 */
export async function confirmTransaction(manager: EntityManager, idleTimeoutMs: number): Promise<() => boolean> {
  const sentAt = Date.now();
  try {
    await manager.query('SELECT 1');
  } catch (error) {
    throw new InboxTransactionLostError(`the inbox transaction ended: ${errorMessageOf(error)}`, { cause: error });
  }
  return () => idleTimeoutMs <= 0 || Date.now() - sentAt < idleTimeoutMs / 2;
}

/** DDL for an app's inbox table; called from that app's migration so each app owns its table. */
export async function createInboxTable(runner: QueryRunner, schema: string): Promise<void> {
  await runner.query(`
    CREATE TABLE "${schema}".inbox (
      consumer_group text NOT NULL,
      event_id uuid NOT NULL,
      event_type text NOT NULL,
      topic text NOT NULL,
      "partition" int NOT NULL,
      "offset" bigint NOT NULL,
      processed_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (consumer_group, event_id)
    )`);
}

/** Index for pruning by age; called from the owning app's migration. */
export async function addInboxPruningIndex(runner: QueryRunner, schema: string): Promise<void> {
  await runner.query(`CREATE INDEX inbox_processed_at ON "${schema}".inbox (consumer_group, processed_at)`);
}
