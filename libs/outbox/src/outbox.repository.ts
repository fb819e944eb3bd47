import type { QueryResultRow } from 'pg';
import type { DataSource } from 'typeorm';
import { outboxChannel } from './outbox-message.entity';

/** An outbox row as the relay sends it. */
export interface OutboxRow {
  id: string;
  event_id: string;
  event_type: string;
  topic: string;
  message_key: string;
  value: string;
  headers: Record<string, string>;
}

/** A parked row as an operator sees it, with how many later rows of its topic and key wait behind it. */
export interface ParkedRow {
  id: string;
  event_id: string;
  event_type: string;
  topic: string;
  message_key: string;
  bytes: number;
  attempts: number;
  created_at: Date;
  parked_at: Date;
  last_error: string | null;
  held: number;
}

export interface OutboxBacklog {
  /** Rows not yet published, parked ones included. */
  pending: number;
  /** Rows the broker refused, set aside for an operator (`npm run outbox -- list`). */
  parked: number;
  /** Age of the oldest unpublished row, in seconds (0 when none). */
  oldestPendingSeconds: number;
}

/** Where the statements run: a pg Client of its own (the CLI), or the app's pool through `poolOf`. */
export interface SqlConnection {
  query<R extends QueryResultRow>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>;
}

/** The app's TypeORM pool as a SqlConnection: each statement on a pooled connection, as `DataSource.query` runs it. */
export function poolOf(dataSource: DataSource): SqlConnection {
  return {
    async query<R extends QueryResultRow>(text: string, values?: unknown[]) {
      const runner = dataSource.createQueryRunner();
      try {
        const result = await runner.query(text, values, true);
        return { rows: result.records as R[], rowCount: result.affected ?? null };
      } finally {
        await runner.release();
      }
    },
  };
}

/** The columns of a row the relay sends (unqualified: each batch query reads one table, without joins). */
const ROW_COLUMNS = 'id, event_id, event_type, topic, message_key, value, headers';

/** Rows a prune deletes per statement, so none holds many locks or runs long. */
const PRUNE_CHUNK = 5000;

/**
 * Every statement on one schema's outbox table: the relay's (next batch, mark, park, prune), the operator's
 * (`npm run outbox`: list, retry, drop of parked rows) and the backlog that health and metrics report. The insert is
 * the writer's, through the business transaction's entity manager; the DDL is the owning app's migrations'.
 */
export class OutboxRepository {
  /** The quoted, schema-qualified table, as messages name it. */
  readonly table: string;

  constructor(
    private readonly db: SqlConnection,
    private readonly schema: string,
  ) {
    this.table = `"${schema}".outbox`;
  }

  // ---- the relay ---------------------------------------------------------------------------------------------

  /**
   * The oldest publishable rows, leaving out `skip` (rows being marked) and parked rows with every later row of a
   * parked row's topic and key. With no parked row (the normal case, told by the small partial index of parked rows),
   * a plain walk of the unpublished index in id order. Only while a row is parked are rows behind it on its key held
   * back; that query's plan depends on the table's statistics (taken while nothing was pending, it checked every
   * pending row against the parked ones per row: seconds a round under a backlog), so it is kept for then.
   */
  async nextBatch(limit: number, skip: string[]): Promise<OutboxRow[]> {
    const {
      rows: [{ parked }],
    } = await this.db.query<{ parked: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM ${this.table} WHERE parked_at IS NOT NULL AND published_at IS NULL) AS parked`,
    );
    if (!parked) {
      const { rows } = await this.db.query<OutboxRow>(
        `SELECT ${ROW_COLUMNS}
           FROM ${this.table}
          WHERE published_at IS NULL AND parked_at IS NULL AND id <> ALL($2::bigint[])
          ORDER BY id
          LIMIT $1`,
        [limit, skip],
      );
      return rows;
    }
    const { rows } = await this.db.query<OutboxRow>(
      `WITH parked AS MATERIALIZED (
         SELECT topic, message_key, min(id) AS id FROM ${this.table}
          WHERE parked_at IS NOT NULL AND published_at IS NULL
          GROUP BY topic, message_key)
       SELECT ${ROW_COLUMNS}
         FROM ${this.table} o
        WHERE o.published_at IS NULL AND o.parked_at IS NULL AND o.id <> ALL($2::bigint[])
          AND NOT EXISTS (
            SELECT 1 FROM parked p WHERE p.topic = o.topic AND p.message_key = o.message_key AND p.id < o.id)
        ORDER BY o.id
        LIMIT $1`,
      [limit, skip],
    );
    return rows;
  }

  async markPublished(ids: string[]): Promise<void> {
    await this.db.query(`UPDATE ${this.table} SET published_at = now() WHERE id = ANY($1::bigint[])`, [ids]);
  }

  /** Notes a failed send of one row, adding `attempts`; returns the row's attempts so far. */
  async noteFailure(id: string, message: string, attempts: number): Promise<number> {
    const { rows } = await this.db.query<{ attempts: number }>(
      `UPDATE ${this.table} SET attempts = attempts + $3, last_error = $2 WHERE id = $1 RETURNING attempts`,
      [id, message, attempts],
    );
    return rows[0]?.attempts ?? 0;
  }

  async park(id: string, message: string, attempts: number): Promise<void> {
    await this.db.query(
      `UPDATE ${this.table} SET parked_at = now(), last_error = $2, attempts = attempts + $3 WHERE id = $1`,
      [id, message, attempts],
    );
  }

  /** Deletes published rows older than `hours` (parked rows stay), in chunks; returns how many. */
  async prune(hours: number): Promise<number> {
    let deleted = 0;
    for (;;) {
      const { rowCount } = await this.db.query(
        `DELETE FROM ${this.table} WHERE id IN (
           SELECT id FROM ${this.table}
            WHERE published_at IS NOT NULL AND published_at < now() - make_interval(hours => $1)
            LIMIT ${PRUNE_CHUNK})`,
        [hours],
      );
      deleted += rowCount ?? 0;
      if ((rowCount ?? 0) < PRUNE_CHUNK) return deleted;
    }
  }

  // ---- health and metrics ------------------------------------------------------------------------------------

  async backlog(): Promise<OutboxBacklog> {
    const {
      rows: [row],
    } = await this.db.query<{ pending: string; parked: string; oldest: number | null }>(
      `SELECT count(*) AS pending, count(*) FILTER (WHERE parked_at IS NOT NULL) AS parked,
              extract(epoch FROM now() - min(created_at))::float8 AS oldest
         FROM ${this.table} WHERE published_at IS NULL`,
    );
    return { pending: Number(row.pending), parked: Number(row.parked), oldestPendingSeconds: row.oldest ?? 0 };
  }

  // ---- the operator (npm run outbox) -------------------------------------------------------------------------

  /** The parked rows among `ids` (all of them for 'all'), in id order. */
  async parked(ids: string[] | 'all'): Promise<ParkedRow[]> {
    const { rows } = await this.db.query<ParkedRow>(
      `SELECT p.id, p.event_id, p.event_type, p.topic, p.message_key, octet_length(p.value) AS bytes, p.attempts,
              p.created_at, p.parked_at, p.last_error,
              (SELECT count(*)::int FROM ${this.table} o
                WHERE o.published_at IS NULL AND o.topic = p.topic AND o.message_key = p.message_key AND o.id > p.id) AS held
         FROM ${this.table} p
        WHERE p.parked_at IS NOT NULL AND p.published_at IS NULL AND ($1::bigint[] IS NULL OR p.id = ANY($1::bigint[]))
        ORDER BY p.id`,
      [ids === 'all' ? null : ids],
    );
    return rows;
  }

  /** Which of `ids` exist, and whether each was published. */
  async states(ids: string[]): Promise<{ id: string; published: boolean }[]> {
    const { rows } = await this.db.query<{ id: string; published: boolean }>(
      `SELECT id::text, published_at IS NOT NULL AS published FROM ${this.table} WHERE id = ANY($1::bigint[])`,
      [ids],
    );
    return rows;
  }

  /** Un-parks the rows (still unpublished) and wakes the relay, which sends them next. */
  async unpark(ids: string[]): Promise<void> {
    await this.db.query(
      `UPDATE ${this.table} SET parked_at = NULL, attempts = 0 WHERE id = ANY($1::bigint[]) AND published_at IS NULL`,
      [ids],
    );
    await this.wakeRelay();
  }

  /** The whole row but a long value, which is cut: enough to rebuild the event, not megabytes on a terminal. */
  async excerpt(id: string): Promise<Record<string, unknown> | undefined> {
    const { rows } = await this.db.query<Record<string, unknown>>(
      `SELECT id, event_id, event_type, topic, message_key, headers, created_at, attempts, last_error,
              left(value, 2000) AS value, octet_length(value) AS value_bytes
         FROM ${this.table} WHERE id = $1`,
      [id],
    );
    return rows[0];
  }

  /** Deletes the rows that are parked among `ids` and wakes the relay: the rows held behind them go out. */
  async dropParked(ids: string[]): Promise<void> {
    await this.db.query(`DELETE FROM ${this.table} WHERE id = ANY($1::bigint[]) AND parked_at IS NOT NULL`, [ids]);
    await this.wakeRelay();
  }

  private async wakeRelay(): Promise<void> {
    await this.db.query(`SELECT pg_notify($1, '')`, [outboxChannel(this.schema)]);
  }
}
