import { Logger } from '@nestjs/common';
import { Client, QueryResult, QueryResultRow } from 'pg';
import { DataSource } from 'typeorm';
import { deleteInChunks } from '@app/database';
import {
  errorMessageOf,
  EventProducer,
  isBrokerUnreachable,
  isRecordRejected,
  isUnknownTopic,
  OutgoingRecord,
  safeErrorMessage,
} from '@app/messaging';
import { outboxChannel } from './outbox-message.entity';
import { LeadershipLostError } from './leadership-lost.error';
import { Sleeper } from './sleeper';

export interface OutboxRelayOptions {
  /** Where the lock session connects: the app's database, directly (advisory locks need a session). */
  databaseUrl: string;
  schema: string;
  batchSize: number;
  /** Safety net for a lost notification; the relay normally wakes on NOTIFY at commit. */
  idlePollMs: number;
  maxBackoffMs: number;
  /** Failed sends of one row on its own, while the broker takes other rows, before the row is parked. */
  maxAttempts: number;
  /**
   * The lock session is ended by PostgreSQL after this long without a word from the relay (a frozen or cut-off
   * host); a standby then takes over. The leader speaks every third of it, and checks the session before each send.
   */
  leaderTimeoutMs: number;
  /** Published rows older than this are deleted by the active relay, hourly; 0 keeps them. Parked rows stay. */
  retentionHours: number;
  /** Runs (and is retried) until it succeeds once, before the first publish: e.g. creating the topics. */
  prepare?: () => Promise<void>;
}

export interface OutboxRelayStatus {
  running: boolean;
  leader: boolean;
  published: number;
  /** Rows this process parked since it started. */
  parked: number;
  lastPublishedAt: string | null;
  lastError: string | null;
  failingSince: string | null;
  /**
   * When the send now waiting for the broker's acknowledgement began; null between sends. A send can wait up to the
   * request timeout (a leader waiting for replicas that are gone) before it fails and `failingSince` is set.
   */
  sendingSince: string | null;
}

/** A send waiting this long for its acknowledgement makes the relay count as stalled (see `stalled`). */
export const STALLED_SEND_MS = 5000;

/** Whether the relay cannot publish now: its sends fail, or one has waited too long for the broker. */
export function relayStalled(
  status: Pick<OutboxRelayStatus, 'failingSince' | 'sendingSince'>,
  now = Date.now(),
): boolean {
  if (status.failingSince !== null) return true;
  return status.sendingSince !== null && now - Date.parse(status.sendingSince) > STALLED_SEND_MS;
}

interface Row {
  id: string;
  event_id: string;
  event_type: string;
  topic: string;
  message_key: string;
  value: string;
  headers: Record<string, string>;
}

interface RoundResult {
  /** Rows read for this round: a full batch means more may be waiting. */
  fetched: number;
  published: number;
  failed: number;
  lastError?: unknown;
}

const keyOf = (row: Row) => `${row.topic}\u0000${row.message_key}`;

const toRecord = (row: Row): OutgoingRecord => ({
  topic: row.topic,
  key: row.message_key,
  value: row.value,
  headers: row.headers,
});

/**
 * Publishes outbox rows in id order with the idempotent producer and marks them published only after the broker
 * acked them. One relay per schema is active at a time (a session advisory lock), so per-key order holds with
 * any number of replicas. A crash between ack and mark republishes those rows: consumers dedupe by event id.
 *
 * A batch the broker refuses is split: its rows are sent one by one, so one bad row cannot hold up the rest. A row
 * the broker refuses for what it is (too large, a forbidden or invalid topic), or that keeps failing on its own
 * while other rows go through, is parked; later rows of its topic and key wait behind it, keeping their order, until
 * an operator retries or drops it (`npm run outbox`).
 */
/** The columns of a row the relay sends (unqualified: each batch query reads one table, without joins). */
const ROW_COLUMNS = 'id, event_id, event_type, topic, message_key, value, headers';

export class OutboxRelay {
  private readonly log = new Logger(OutboxRelay.name);
  private readonly sleeper = new Sleeper();
  private client?: Client;
  private heartbeat?: NodeJS.Timeout;
  /** Queries on the lock session run one after another (pg deprecates overlapping queries on one client). */
  private sessionTail: Promise<unknown> = Promise.resolve();
  private running = false;
  private leader = false;
  private loop?: Promise<void>;
  private prepared = false;
  private nextPruneAt = 0;
  /**
   * The previous full round's rows being marked published (their send was acknowledged) while the next round reads
   * and sends: under a backlog the database work of one round overlaps the broker work of the next. At most one.
   */
  private marking?: { ids: string[]; done: Promise<void> };
  private readonly state: OutboxRelayStatus = {
    running: false,
    leader: false,
    published: 0,
    parked: 0,
    lastPublishedAt: null,
    lastError: null,
    failingSince: null,
    sendingSince: null,
  };

  constructor(
    private readonly dataSource: DataSource,
    private readonly producer: EventProducer,
    private readonly options: OutboxRelayOptions,
  ) {}

  private get table(): string {
    return `"${this.options.schema}".outbox`;
  }

  status(): OutboxRelayStatus {
    return { ...this.state, running: this.running, leader: this.leader };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.sleeper.interrupt();
    await this.loop;
    await this.settleMarking().catch((error: unknown) => this.recordFailure(error));
    this.endSession(this.client);
  }

  /** Waits for the previous round's mark; its failure surfaces here (its rows stay pending and go out again). */
  private async settleMarking(): Promise<void> {
    const marking = this.marking;
    if (!marking) return;
    try {
      await marking.done;
    } finally {
      if (this.marking === marking) this.marking = undefined;
    }
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (this.running) {
      try {
        if (!this.leader) {
          await this.acquireLeadership();
          if (!this.leader) {
            // Standby: try again soon enough to take over within about one leader timeout.
            await this.sleeper.sleep(Math.min(this.options.idlePollMs, this.options.leaderTimeoutMs / 3), 'idle');
            continue;
          }
        }
        if (!this.prepared && this.options.prepare) {
          await this.options.prepare();
          this.prepared = true;
        }
        const round = await this.publishRound();
        if (round.failed > 0) {
          // Some rows went out, some did not: the failing ones are retried after a backoff (and parked in time).
          failures += 1;
          this.recordFailure(round.lastError);
          await this.sleeper.sleep(this.backoff(failures), 'backoff');
          continue;
        }
        failures = 0;
        if (Date.now() >= this.nextPruneAt) await this.pruneNow();
        if (this.state.failingSince) {
          this.log.log(`publishing again after failures since ${this.state.failingSince}`);
          this.state.failingSince = null;
          this.state.lastError = null;
        }
        // A full batch means more is waiting: go again at once. Otherwise wait for the next commit.
        if (round.fetched < this.options.batchSize) {
          await this.settleMarking();
          await this.sleeper.sleep(this.options.idlePollMs, 'idle');
        }
      } catch (error) {
        if (error instanceof LeadershipLostError) {
          this.log.warn(`relay for schema ${this.options.schema} lost its lock session; standing by`);
          continue;
        }
        failures += 1;
        this.recordFailure(error);
        await this.sleeper.sleep(this.backoff(failures), 'backoff');
      }
    }
  }

  private backoff(failures: number): number {
    return Math.min(100 * 2 ** Math.min(failures - 1, 20), this.options.maxBackoffMs);
  }

  private recordFailure(error: unknown): void {
    const message = errorMessageOf(error);
    if (!this.state.failingSince) {
      this.state.failingSince = new Date().toISOString();
      this.log.warn(`relay failing, backing off: ${message}`);
    }
    this.state.lastError = message;
  }

  // ---- leadership -------------------------------------------------------------------------------------------

  /**
   * The lock lives on its own session, which PostgreSQL ends after `leaderTimeoutMs` of silence
   * (`idle_session_timeout`): a leader whose host froze or dropped off the network loses the lock by itself, since
   * TCP keepalives are answered by the kernel of a frozen process and prove nothing.
   */
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
    client.on('notification', () => this.sleeper.wake());
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
    this.heartbeat = setInterval(() => {
      this.onSession(client, 'SELECT 1').catch((error: unknown) => this.sessionLost(client, errorMessageOf(error)));
    }, timeout / 3);
    return client;
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

  private async acquireLeadership(): Promise<void> {
    const client = this.client ?? (await this.openSession());
    const result = await this.onSession<{ locked: boolean }>(
      client,
      'SELECT pg_try_advisory_lock(hashtext($1)) AS locked',
      [`outbox-relay:${this.options.schema}`],
    );
    this.leader = result.rows[0]?.locked === true && client === this.client;
    if (this.leader) this.log.log(`relay active for schema ${this.options.schema}`);
  }

  /** Fencing: one round trip on the lock session right before a send. A session that answers still holds the lock. */
  private async confirmLeadership(): Promise<void> {
    const client = this.client;
    if (!this.leader || !client) throw new LeadershipLostError('not the leader');
    try {
      await this.onSession(client, 'SELECT 1');
    } catch (error) {
      this.sessionLost(client, errorMessageOf(error));
    }
    if (!this.leader || client !== this.client) throw new LeadershipLostError('lock session lost');
  }

  // ---- publishing -------------------------------------------------------------------------------------------

  /** The oldest unpublished rows, leaving out parked rows and every later row of a parked row's topic and key. */
  /**
   * The oldest publishable rows. With no parked row (the normal case, told by the small partial index of parked
   * rows), a plain walk of the unpublished index in id order. Only while a row is parked are rows behind it on its key
   * held back; that query's plan depends on the table's statistics (taken while nothing was pending, it checked
   * every pending row against the parked ones per row: seconds a round under a backlog), so it is kept for then.
   */
  private async nextBatch(): Promise<Row[]> {
    const [{ parked }] = await this.dataSource.query<{ parked: boolean }[]>(
      `SELECT EXISTS (SELECT 1 FROM ${this.table} WHERE parked_at IS NOT NULL AND published_at IS NULL) AS parked`,
    );
    // Rows of the previous round, acknowledged and being marked, are not read again.
    const marking = this.marking?.ids ?? [];
    if (!parked) {
      return this.dataSource.query<Row[]>(
        `SELECT ${ROW_COLUMNS}
           FROM ${this.table}
          WHERE published_at IS NULL AND parked_at IS NULL AND id <> ALL($2::bigint[])
          ORDER BY id
          LIMIT $1`,
        [this.options.batchSize, marking],
      );
    }
    return this.dataSource.query<Row[]>(
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
      [this.options.batchSize, marking],
    );
  }

  /** Sends rows and resolves once the broker acknowledged them all (acks=all); throws without marking otherwise. */
  private async send(rows: Row[]): Promise<void> {
    await this.confirmLeadership();
    this.state.sendingSince = new Date().toISOString();
    try {
      await this.producer.send(rows.map(toRecord));
    } finally {
      this.state.sendingSince = null;
    }
  }

  /** Marked only after the broker acked: a crash before this line publishes the rows again, never loses them. */
  private async markPublished(rows: Row[]): Promise<void> {
    await this.dataSource.query(`UPDATE ${this.table} SET published_at = now() WHERE id = ANY($1::bigint[])`, [
      rows.map((row) => row.id),
    ]);
    this.state.published += rows.length;
    this.state.lastPublishedAt = new Date().toISOString();
  }

  /**
   * One round: the oldest publishable rows in one send; if the broker refuses it, row by row. A full round's rows are
   * marked while the next round reads and sends (the next round waits for that mark before starting its own), so
   * the rows of one round are marked before any later round's are, and a mark that fails leaves them pending.
   */
  private async publishRound(): Promise<RoundResult> {
    const rows = await this.nextBatch();
    if (rows.length === 0) return { fetched: 0, published: 0, failed: 0 };
    try {
      await this.send(rows);
    } catch (error) {
      // The previous round's mark failing leaves its rows pending; this send's failure is the one that decides.
      await this.settleMarking().catch((markError: unknown) => this.recordFailure(markError));
      if (error instanceof LeadershipLostError || isBrokerUnreachable(error)) throw error;
      return this.isolate(rows);
    }
    await this.settleMarking();
    const done = this.markPublished(rows);
    done.catch(() => undefined); // awaited by the next settleMarking, which sees the failure
    this.marking = { ids: rows.map((row) => row.id), done };
    // Marked in the background only while more rows wait; otherwise the round ends with its rows marked.
    if (rows.length < this.options.batchSize) await this.settleMarking();
    return { fetched: rows.length, published: rows.length, failed: 0 };
  }

  /**
   * Sends the rows of a refused batch one at a time, in order. After a failed row, later rows of its topic and key
   * wait for the next round (per-key order), and so do the other rows of its topic, which likely fail the same way
   * (a deleted topic, a partition without a leader) and would each cost the producer's retries. An unreachable
   * broker ends the round.
   */
  private async isolate(rows: Row[]): Promise<RoundResult> {
    const blockedKeys = new Set<string>();
    const blockedTopics = new Set<string>();
    const failed: { row: Row; error: unknown }[] = [];
    let published = 0;
    for (const row of rows) {
      if (blockedKeys.has(keyOf(row)) || blockedTopics.has(row.topic)) continue;
      try {
        await this.send([row]);
      } catch (error) {
        if (error instanceof LeadershipLostError) throw error;
        failed.push({ row, error });
        if (isBrokerUnreachable(error)) break;
        blockedKeys.add(keyOf(row));
        if (isRecordRejected(error)) {
          failed.pop();
          await this.park(row, error, 1);
          continue;
        }
        blockedTopics.add(row.topic);
        // A deleted system topic is created again before the next round; any other unknown topic gets parked.
        if (isUnknownTopic(error)) this.prepared = false;
        continue;
      }
      await this.markPublished([row]);
      published += 1;
    }
    for (const { row, error } of failed) {
      // An attempt counts only when the broker took other rows in the same round: in an outage no row is at fault.
      const counts = published > 0 && !isBrokerUnreachable(error);
      const [updated] = await this.dataSource.query<[{ attempts: number }[], number]>(
        `UPDATE ${this.table} SET attempts = attempts + $3, last_error = $2 WHERE id = $1 RETURNING attempts`,
        [row.id, safeErrorMessage(error), counts ? 1 : 0],
      );
      if (counts && (updated[0]?.attempts ?? 0) >= this.options.maxAttempts) await this.park(row, error, 0);
    }
    if (failed.length > 0 && published === 0) throw failed[0].error;
    return { fetched: rows.length, published, failed: failed.length, lastError: failed[0]?.error };
  }

  /** Deletes published rows past the retention, in chunks so no statement holds many locks; returns how many. */
  async prune(): Promise<number> {
    if (this.options.retentionHours <= 0) return 0;
    return deleteInChunks(
      this.dataSource,
      this.table,
      'id',
      'published_at IS NOT NULL AND published_at < now() - make_interval(hours => $1)',
      [this.options.retentionHours],
    );
  }

  private async pruneNow(): Promise<void> {
    this.nextPruneAt = Date.now() + 3_600_000;
    try {
      const deleted = await this.prune();
      if (deleted > 0)
        this.log.log(`pruned ${deleted} published outbox rows older than ${this.options.retentionHours} h`);
    } catch (error) {
      this.log.warn(`outbox pruning failed: ${errorMessageOf(error)}`);
    }
  }

  private async park(row: Row, error: unknown, addAttempts: number): Promise<void> {
    const message = safeErrorMessage(error);
    await this.dataSource.query(
      `UPDATE ${this.table} SET parked_at = now(), last_error = $2, attempts = attempts + $3 WHERE id = $1`,
      [row.id, message, addAttempts],
    );
    this.state.parked += 1;
    this.log.error(
      `outbox row ${row.id} (${row.event_type} ${row.event_id} to ${row.topic}, key ${row.message_key}) parked: ${message}. ` +
        `Later events of that key wait behind it; see \`npm run outbox -- list\` to retry or drop it`,
    );
  }
}
