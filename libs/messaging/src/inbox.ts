import { Column, DataSource, Entity, EntityManager, PrimaryColumn, QueryRunner } from 'typeorm';

export interface InboxKey {
  consumerGroup: string;
  eventId: string;
  eventType: string;
  topic: string;
  partition: number;
  offset: string;
}

export type InboxOutcome = 'handled' | 'duplicate';

/**
 * Dedupe by (consumer group, event id). `run` records the event and does the work in one unit: if the work
 * fails, the record is gone and the event will be handled again; if the record exists, the work is skipped.
 */
export interface InboxStore {
  run(key: InboxKey, work: (transaction?: EntityManager) => Promise<void>): Promise<InboxOutcome>;
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
 */
export class TypeOrmInbox implements InboxStore {
  constructor(private readonly dataSource: DataSource) {}

  async run(key: InboxKey, work: (transaction?: EntityManager) => Promise<void>): Promise<InboxOutcome> {
    return this.dataSource.transaction(async (manager) => {
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
      await work(manager);
      return 'handled';
    });
  }
}

/** For naturally idempotent consumers (deleting a cache key): every delivery runs the work. */
export class NoInbox implements InboxStore {
  async run(_key: InboxKey, work: () => Promise<void>): Promise<InboxOutcome> {
    await work();
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
