import { Column, DataSource, Entity, EntityManager, PrimaryColumn, QueryRunner } from 'typeorm';
import { deleteInChunks, PgErrorCode, pgErrorOf } from '@app/database';
import type { InboxKey, InboxOutcome, InboxStore } from '@app/messaging';
import { InboxBusyError } from './inbox-busy.error';

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
 */
export class TypeOrmInbox implements InboxStore {
  /** `lockTimeoutMs` bounds the wait on a key another transaction holds; past it, InboxBusyError. */
  constructor(
    private readonly dataSource: DataSource,
    private readonly lockTimeoutMs = 5000,
  ) {}

  async run(key: InboxKey, work: (transaction?: EntityManager) => Promise<void>): Promise<InboxOutcome> {
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
    work: (transaction?: EntityManager) => Promise<void>,
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
    await work(manager);
    return 'handled';
  }
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
