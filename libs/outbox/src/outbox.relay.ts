import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import {
  errorMessageOf,
  EventProducer,
  isBrokerUnreachable,
  isRecordFault,
  isRecordRejected,
  isUnknownTopic,
  OutgoingRecord,
  safeErrorMessage,
} from '@app/messaging';
import { LeadershipLostError } from './leadership-lost.error';
import { OutboxRepository, OutboxRow as Row, poolOf } from './outbox.repository';
import { RelayLeadership } from './relay-leadership';
import { OutboxRelayStatus } from './relay-status';
import { Sleeper } from './sleeper';

export * from './relay-status';

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
  /** The leader gives up its lock when its loop completed no round in this long (see RelayLeadership). */
  progressTimeoutMs: number;
  /** Published rows older than this are deleted by the active relay, hourly; 0 keeps them. Parked rows stay. */
  retentionHours: number;
  /** Runs (and is retried) until it succeeds once, before the first publish: e.g. creating the topics. */
  prepare?: () => Promise<void>;
  /**
   * Whether the cluster has the topic. A row refused as UNKNOWN_TOPIC_OR_PARTITION counts toward parking only when
   * the cluster confirms the topic is absent; otherwise (a partition the answering broker does not know yet) it is an
   * outage like any other. Unset: such a row never counts.
   */
  topicExists?: (topic: string) => Promise<boolean>;
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
export class OutboxRelay {
  private readonly log = new Logger(OutboxRelay.name);
  private readonly sleeper = new Sleeper();
  private readonly leadership: RelayLeadership;
  private readonly rows: OutboxRepository;
  private running = false;
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
    dataSource: DataSource,
    private readonly producer: EventProducer,
    private readonly options: OutboxRelayOptions,
  ) {
    this.leadership = new RelayLeadership(
      options,
      () => this.sleeper.wake(),
      () => this.state.sendingSince !== null,
    );
    this.rows = new OutboxRepository(poolOf(dataSource), options.schema);
  }

  status(): OutboxRelayStatus {
    return { ...this.state, running: this.running, leader: this.leadership.isLeader };
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
    this.leadership.release();
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
        if (!this.leadership.isLeader) {
          if (!(await this.leadership.acquire())) {
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
        // The database answered and every row read was published, parked or left for a retry: the loop is alive.
        this.leadership.progressed();
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

  // ---- publishing -------------------------------------------------------------------------------------------

  /** Rows of the previous round, acknowledged and being marked, are not read again. */
  private nextBatch(): Promise<Row[]> {
    return this.rows.nextBatch(this.options.batchSize, this.marking?.ids ?? []);
  }

  /** Sends rows and resolves once the broker acknowledged them all (acks=all); throws without marking otherwise. */
  private async send(rows: Row[]): Promise<void> {
    await this.leadership.confirm();
    this.state.sendingSince = new Date().toISOString();
    try {
      await this.producer.send(rows.map(toRecord));
    } finally {
      this.state.sendingSince = null;
      this.leadership.progressed();
    }
  }

  /** Marked only after the broker acked: a crash before this line publishes the rows again, never loses them. */
  private async markPublished(rows: Row[]): Promise<void> {
    await this.rows.markPublished(rows.map((row) => row.id));
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
      // An attempt counts only when the broker took other rows in the same round and its reply blames this row: a
      // partition without a leader, or any other outage, holds a row back without anything being wrong with it.
      const counts = published > 0 && (await this.blamesRow(row, error));
      const attempts = await this.rows.noteFailure(row.id, safeErrorMessage(error), counts ? 1 : 0);
      if (counts && attempts >= this.options.maxAttempts) await this.park(row, error, 0);
    }
    if (failed.length > 0 && published === 0) throw failed[0].error;
    return { fetched: rows.length, published, failed: failed.length, lastError: failed[0]?.error };
  }

  private async blamesRow(row: Row, error: unknown): Promise<boolean> {
    if (isRecordFault(error)) return true;
    if (!isUnknownTopic(error) || !this.options.topicExists) return false;
    try {
      return !(await this.options.topicExists(row.topic));
    } catch {
      return false;
    }
  }

  /** Deletes published rows past the retention, in chunks so no statement holds many locks; returns how many. */
  async prune(): Promise<number> {
    if (this.options.retentionHours <= 0) return 0;
    return this.rows.prune(this.options.retentionHours);
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
    await this.rows.park(row.id, message, addAttempts);
    this.state.parked += 1;
    this.log.error(
      `outbox row ${row.id} (${row.event_type} ${row.event_id} to ${row.topic}, key ${row.message_key}) parked: ${message}. ` +
        `Later events of that key wait behind it; see \`npm run outbox -- list\` to retry or drop it`,
    );
  }
}
