import { DataSource } from 'typeorm';
import { deleteInChunks } from '@app/database';

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

/** The columns of a row the relay sends (unqualified: each batch query reads one table, without joins). */
const ROW_COLUMNS = 'id, event_id, event_type, topic, message_key, value, headers';

/** The relay's statements on one schema's outbox table. */
export class OutboxRows {
  constructor(
    private readonly dataSource: DataSource,
    schema: string,
  ) {
    this.table = `"${schema}".outbox`;
  }

  private readonly table: string;

  /**
   * The oldest publishable rows, leaving out `skip` (rows being marked) and parked rows with every later row of a
   * parked row's topic and key. With no parked row (the normal case, told by the small partial index of parked rows),
   * a plain walk of the unpublished index in id order. Only while a row is parked are rows behind it on its key held
   * back; that query's plan depends on the table's statistics (taken while nothing was pending, it checked every
   * pending row against the parked ones per row: seconds a round under a backlog), so it is kept for then.
   */
  async nextBatch(limit: number, skip: string[]): Promise<OutboxRow[]> {
    const [{ parked }] = await this.dataSource.query<{ parked: boolean }[]>(
      `SELECT EXISTS (SELECT 1 FROM ${this.table} WHERE parked_at IS NOT NULL AND published_at IS NULL) AS parked`,
    );
    if (!parked) {
      return this.dataSource.query<OutboxRow[]>(
        `SELECT ${ROW_COLUMNS}
           FROM ${this.table}
          WHERE published_at IS NULL AND parked_at IS NULL AND id <> ALL($2::bigint[])
          ORDER BY id
          LIMIT $1`,
        [limit, skip],
      );
    }
    return this.dataSource.query<OutboxRow[]>(
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
  }

  async markPublished(ids: string[]): Promise<void> {
    await this.dataSource.query(`UPDATE ${this.table} SET published_at = now() WHERE id = ANY($1::bigint[])`, [ids]);
  }

  /** Notes a failed send of one row, adding `attempts`; returns the row's attempts so far. */
  async noteFailure(id: string, message: string, attempts: number): Promise<number> {
    const [updated] = await this.dataSource.query<[{ attempts: number }[], number]>(
      `UPDATE ${this.table} SET attempts = attempts + $3, last_error = $2 WHERE id = $1 RETURNING attempts`,
      [id, message, attempts],
    );
    return updated[0]?.attempts ?? 0;
  }

  async park(id: string, message: string, attempts: number): Promise<void> {
    await this.dataSource.query(
      `UPDATE ${this.table} SET parked_at = now(), last_error = $2, attempts = attempts + $3 WHERE id = $1`,
      [id, message, attempts],
    );
  }

  /** Deletes published rows older than `hours`, in chunks so no statement holds many locks; returns how many. */
  prune(hours: number): Promise<number> {
    return deleteInChunks(
      this.dataSource,
      this.table,
      'id',
      'published_at IS NOT NULL AND published_at < now() - make_interval(hours => $1)',
      [hours],
    );
  }
}
