import type { Pool, QueryResult, QueryResultRow } from 'pg';
import type { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { UnavailableError } from '@app/messaging';

/**
 * A claim statement got no answer in time: the database is down, or the connection went silent (a partition keeps
 * sockets open, so nothing else ends the wait). Not the event's failure: retried without using up an attempt.
 */
export class ClaimStoreTimeoutError extends UnavailableError {
  override readonly name = 'ClaimStoreTimeoutError';
}

/**
 * One statement on the app's pool, bounded as a whole (waiting for a connection included). A connection that did not
 * answer in time is dropped, never returned to the pool: its next user would wait behind the lost statement. A
 * statement that was sent may still have been carried out; every claim statement is safe to repeat.
 */
export async function boundedQuery<R extends QueryResultRow>(
  dataSource: DataSource,
  sql: string,
  parameters: unknown[],
  timeoutMs: number,
): Promise<QueryResult<R>> {
  const pool = (dataSource.driver as PostgresDriver).master as Pool;
  let timer: NodeJS.Timeout | undefined;
  let expired = false;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      expired = true;
      reject(new ClaimStoreTimeoutError(`the claims table gave no answer within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  const attempt = (async () => {
    const client = await pool.connect();
    if (expired) {
      // Given up on while it waited for the connection: returned unused.
      client.release();
      throw new ClaimStoreTimeoutError('gave up before a connection was free');
    }
    try {
      const result = await Promise.race([client.query<R>(sql, parameters), timeout]);
      client.release();
      return result;
    } catch (error) {
      client.release(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
  })();
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
    attempt.catch(() => undefined);
  }
}
