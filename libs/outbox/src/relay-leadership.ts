import { Logger } from '@nestjs/common';
import { Client, QueryResult, QueryResultRow } from 'pg';
import { errorMessageOf } from '@app/messaging';
import { outboxChannel } from './outbox-message.entity';
import { LeadershipLostError } from './leadership-lost.error';

export interface RelayLeadershipOptions {
  /** Where the lock session connects: the app's database, directly (advisory locks need a session). */
  databaseUrl: string;
  schema: string;
  /** PostgreSQL ends the lock session after this long without a word from the relay (idle_session_timeout). */
  leaderTimeoutMs: number;
  /**
   * The leader gives the lock up when its loop has completed no round in this long: a lock session that answers
   * proves only that the process lives, not that it publishes (its pool may hang, or fail, while the lock session,
   * connected directly, is fine). A standby then takes over.
   */
  progressTimeoutMs: number;
}

/**
 * The relay's advisory lock, on a session of its own. The lock is held while both hold: the session answers (its
 * heartbeat; PostgreSQL ends a session silent for `leaderTimeoutMs`, since TCP keepalives are answered by the kernel
 * of a frozen process and prove nothing), and the relay's loop completes rounds (`progressed()`).
 */
export class RelayLeadership {
  private readonly log = new Logger('OutboxRelay');
  private client?: Client;
  private heartbeat?: NodeJS.Timeout;
  /** Queries on the lock session run one after another (pg deprecates overlapping queries on one client). */
  private sessionTail: Promise<unknown> = Promise.resolve();
  private leader = false;
  private lastProgressAt = 0;
  /** After giving the lock up for want of progress, it is not taken again before this: a standby takes it first. */
  private retakeAfter = 0;

  constructor(
    private readonly options: RelayLeadershipOptions,
    /** A commit's NOTIFY on the outbox channel. */
    private readonly onNotify: () => void,
    /**
     * Whether the loop waits on the broker now. That time does not count against progress: kafkajs bounds a send
     * itself (its retries can take minutes while a partition has no leader), and health reports a send that waits.
     */
    private readonly waitingOnBroker: () => boolean = () => false,
  ) {}

  get isLeader(): boolean {
    return this.leader;
  }

  /** The loop completed a round (the database answered, every row read was dealt with), or a send ended. */
  progressed(): void {
    this.lastProgressAt = Date.now();
  }

  /** Tries to take the lock; true when this relay now leads. */
  async acquire(): Promise<boolean> {
    if (Date.now() < this.retakeAfter) return false;
    const client = this.client ?? (await this.openSession());
    const result = await this.onSession<{ locked: boolean }>(
      client,
      'SELECT pg_try_advisory_lock(hashtext($1)) AS locked',
      [`outbox-relay:${this.options.schema}`],
    );
    this.leader = result.rows[0]?.locked === true && client === this.client;
    if (this.leader) {
      this.lastProgressAt = Date.now();
      this.log.log(`relay active for schema ${this.options.schema}`);
    }
    return this.leader;
  }

  /** Fencing: one round trip on the lock session right before a send. A session that answers still holds the lock. */
  async confirm(): Promise<void> {
    const client = this.client;
    if (!this.leader || !client) throw new LeadershipLostError('not the leader');
    try {
      await this.onSession(client, 'SELECT 1');
    } catch (error) {
      this.sessionLost(client, errorMessageOf(error));
    }
    if (!this.leader || client !== this.client) throw new LeadershipLostError('lock session lost');
  }

  /** Ends the lock session (stop): PostgreSQL releases the lock with it. */
  release(): void {
    this.endSession(this.client);
  }

  private async openSession(): Promise<Client> {
    const timeout = this.options.leaderTimeoutMs;
    const client = new Client({
      connectionString: this.options.databaseUrl,
      application_name: 'outbox-relay',
      keepAlive: true,
      connectionTimeoutMillis: timeout,
      query_timeout: timeout,
      options: `-c idle_session_timeout=${timeout}`,
    });
    client.on('error', (error) => this.sessionLost(client, error.message));
    client.on('end', () => this.sessionLost(client, 'connection ended'));
    client.on('notification', () => this.onNotify());
    // A new session does not wait behind a query that hangs on the old one.
    this.sessionTail = Promise.resolve();
    try {
      await client.connect();
      await client.query(`LISTEN "${outboxChannel(this.options.schema)}"`);
    } catch (error) {
      this.endSession(client);
      throw error;
    }
    this.client = client;
    this.heartbeat = setInterval(() => this.beat(client), timeout / 3);
    return client;
  }

  private beat(client: Client): void {
    if (this.waitingOnBroker()) this.lastProgressAt = Date.now();
    const idle = Date.now() - this.lastProgressAt;
    if (this.leader && idle > this.options.progressTimeoutMs) {
      this.log.warn(
        `relay for schema ${this.options.schema} completed no round in ${idle} ms; giving up the lock so a standby ` +
          'takes over',
      );
      this.retakeAfter = Date.now() + this.options.leaderTimeoutMs;
      this.endSession(client);
      return;
    }
    this.onSession(client, 'SELECT 1').catch((error: unknown) => this.sessionLost(client, errorMessageOf(error)));
  }

  private onSession<R extends QueryResultRow = QueryResultRow>(
    client: Client,
    sql: string,
    params?: unknown[],
  ): Promise<QueryResult<R>> {
    const run = this.sessionTail.then(() => client.query<R>(sql, params));
    this.sessionTail = run.catch(() => undefined);
    return run;
  }

  private sessionLost(client: Client, reason: string): void {
    if (client !== this.client) return;
    if (this.leader) this.log.warn(`relay lock session lost (${reason})`);
    this.endSession(client);
  }

  private endSession(client: Client | undefined): void {
    if (client === this.client) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
      this.client = undefined;
      this.leader = false;
    }
    client?.end().catch(() => undefined);
  }
}
