import { Logger } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource, In, IsNull } from 'typeorm';
import { EventProducer } from '@app/messaging';
import { OutboxMessage, outboxChannel } from './outbox-message.entity';

export interface OutboxRelayOptions {
  databaseUrl: string;
  schema: string;
  batchSize: number;
  /** Safety net for a lost notification; the relay normally wakes on NOTIFY at commit. */
  idlePollMs: number;
  maxBackoffMs: number;
  /** Runs (and is retried) until it succeeds once, before the first publish: e.g. creating the topics. */
  prepare?: () => Promise<void>;
}

export interface OutboxRelayStatus {
  running: boolean;
  leader: boolean;
  published: number;
  lastPublishedAt: string | null;
  lastError: string | null;
  failingSince: string | null;
}

/**
 * Publishes outbox rows in id order with the idempotent producer and marks them published only after the broker
 * acked them. One relay per schema is active at a time (a session advisory lock), so per-key order holds with
 * any number of replicas. A crash between ack and mark republishes those rows: consumers dedupe by event id.
 */
export class OutboxRelay {
  private readonly log = new Logger(OutboxRelay.name);
  private client?: Client;
  private running = false;
  private leader = false;
  private wake?: () => void;
  private pendingWake = false;
  private loop?: Promise<void>;
  private prepared = false;
  private readonly state: OutboxRelayStatus = {
    running: false,
    leader: false,
    published: 0,
    lastPublishedAt: null,
    lastError: null,
    failingSince: null,
  };

  constructor(
    private readonly dataSource: DataSource,
    private readonly producer: EventProducer,
    private readonly options: OutboxRelayOptions,
  ) {}

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
    this.notify();
    await this.loop;
    await this.releaseSession();
  }

  private notify(): void {
    this.pendingWake = true;
    this.wake?.();
  }

  private async sleep(ms: number): Promise<void> {
    if (this.pendingWake || !this.running) {
      this.pendingWake = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.wake = finish;
    });
    this.pendingWake = false;
  }

  private async run(): Promise<void> {
    let backoff = 100;
    while (this.running) {
      try {
        if (!this.leader) {
          await this.acquireLeadership();
          if (!this.leader) {
            await this.sleep(this.options.idlePollMs);
            continue;
          }
        }
        if (!this.prepared && this.options.prepare) {
          await this.options.prepare();
          this.prepared = true;
        }
        const sent = await this.publishBatch();
        backoff = 100;
        if (this.state.failingSince) {
          this.log.log(`publishing again after failures since ${this.state.failingSince}`);
          this.state.failingSince = null;
          this.state.lastError = null;
        }
        // A full batch means more is waiting: go again at once. Otherwise wait for the next commit.
        if (sent < this.options.batchSize) await this.sleep(this.options.idlePollMs);
      } catch (error) {
        const message = (error as Error).message;
        if (!this.state.failingSince) {
          this.state.failingSince = new Date().toISOString();
          this.log.warn(`relay failing, backing off: ${message}`);
        }
        this.state.lastError = message;
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, this.options.maxBackoffMs);
        this.pendingWake = false;
      }
    }
  }

  private async acquireLeadership(): Promise<void> {
    if (!this.client) {
      const client = new Client({ connectionString: this.options.databaseUrl, application_name: 'outbox-relay' });
      client.on('error', (error) => {
        this.log.warn(`relay session lost: ${error.message}`);
        this.leader = false;
        this.client = undefined;
        client.end().catch(() => undefined);
      });
      client.on('notification', () => this.notify());
      await client.connect();
      await client.query(`LISTEN "${outboxChannel(this.options.schema)}"`);
      this.client = client;
    }
    const result = await this.client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [
      `outbox-relay:${this.options.schema}`,
    ]);
    this.leader = result.rows[0]?.locked === true;
    if (this.leader) this.log.log(`relay active for schema ${this.options.schema}`);
  }

  private async releaseSession(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.leader = false;
    if (client) await client.end().catch(() => undefined);
  }

  /** One round: read the oldest unpublished rows, send them, mark them. Returns how many were published. */
  private async publishBatch(): Promise<number> {
    const repository = this.dataSource.getRepository(OutboxMessage);
    const rows = await repository.find({
      where: { publishedAt: IsNull() },
      order: { id: 'ASC' },
      take: this.options.batchSize,
    });
    if (rows.length === 0) return 0;
    const ids = rows.map((row) => row.id);
    try {
      await this.producer.send(
        rows.map((row) => ({ topic: row.topic, key: row.messageKey, value: row.value, headers: row.headers })),
      );
    } catch (error) {
      await repository.increment({ id: In(ids) }, 'attempts', 1).catch(() => undefined);
      throw error;
    }
    // Marked only now: the broker acked every row of this batch.
    await repository.update({ id: In(ids) }, { publishedAt: new Date() });
    this.state.published += rows.length;
    this.state.lastPublishedAt = new Date().toISOString();
    return rows.length;
  }
}
