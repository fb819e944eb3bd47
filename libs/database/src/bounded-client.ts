import { Client } from 'pg';

/** pg's error for a query whose answer did not arrive within `query_timeout`. */
const READ_TIMEOUT = 'Query read timeout';

const timedOut = (error: unknown) => error instanceof Error && error.message === READ_TIMEOUT;

/**
 * A pooled pg client that drops its connection when an answer never came (`query_timeout`). pg fails the query
 * but keeps the connection, with the query still in flight: back in the pool, every later query on it would wait
 * behind one that may never be answered (a silent network, a pooler that stopped forwarding). Destroyed, it leaves
 * the pool and the next query gets a new connection.
 */
export class BoundedClient extends Client {
  override query(...args: unknown[]): never {
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback === 'function') {
      args[last] = (error: unknown, result: unknown) => {
        if (timedOut(error)) this.drop();
        (callback as (error: unknown, result: unknown) => void)(error, result);
      };
    }
    const result = (Client.prototype.query as (...a: unknown[]) => unknown).apply(this, args);
    if (result instanceof Promise) {
      result.catch((error: unknown) => {
        if (timedOut(error)) this.drop();
      });
    }
    return result as never;
  }

  private drop(): void {
    (this as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  }
}
