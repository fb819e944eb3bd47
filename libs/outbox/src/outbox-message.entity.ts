import { Column, Entity, Index, PrimaryGeneratedColumn, QueryRunner } from 'typeorm';

/** An event waiting to be relayed to Kafka. Written in the business transaction; marked published after the broker acked. */
@Entity({ name: 'outbox' })
export class OutboxMessage {
  /** Commit-independent sequence; the relay sends in this order, so events of one transaction keep theirs. */
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id!: string;

  @Index({ unique: true })
  @Column({ name: 'event_id', type: 'uuid' })
  eventId!: string;

  @Column({ name: 'event_type', type: 'text' })
  eventType!: string;

  @Column({ type: 'text' })
  topic!: string;

  @Column({ name: 'message_key', type: 'text' })
  messageKey!: string;

  /** The serialized CloudEvents envelope, sent byte for byte. */
  @Column({ type: 'text' })
  value!: string;

  @Column({ type: 'jsonb' })
  headers!: Record<string, string>;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'published_at', type: 'timestamptz', nullable: true })
  publishedAt!: Date | null;

  /** Failed sends of this row on its own (isolated from its batch); a broker outage does not count. */
  @Column({ type: 'int', default: 0 })
  attempts!: number;

  /** Set when the broker can never take this row: the relay skips it, and later rows of its topic and key wait. */
  @Column({ name: 'parked_at', type: 'timestamptz', nullable: true })
  parkedAt!: Date | null;

  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError!: string | null;
}

/** The channel the insert trigger notifies, so the relay wakes at commit instead of polling. */
export function outboxChannel(schema: string): string {
  return `outbox_${schema}`;
}

/** DDL for an app's outbox table and its commit-time notification; called from the owning app's migration. */
export async function createOutboxTable(runner: QueryRunner, schema: string): Promise<void> {
  const channel = outboxChannel(schema);
  await runner.query(`
    CREATE TABLE "${schema}".outbox (
      id bigserial PRIMARY KEY,
      event_id uuid NOT NULL UNIQUE,
      event_type text NOT NULL,
      topic text NOT NULL,
      message_key text NOT NULL,
      value text NOT NULL,
      headers jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      published_at timestamptz,
      attempts int NOT NULL DEFAULT 0
    )`);
  await runner.query(`CREATE INDEX outbox_unpublished ON "${schema}".outbox (id) WHERE published_at IS NULL`);
  await runner.query(`
    CREATE FUNCTION "${schema}".outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('${channel}', '');
      RETURN NULL;
    END $$`);
  await runner.query(`
    CREATE TRIGGER outbox_notify AFTER INSERT ON "${schema}".outbox
    FOR EACH STATEMENT EXECUTE FUNCTION "${schema}".outbox_notify()`);
}

/**
 * DDL that lets the relay park a row the broker can never take (too large, a deleted or forbidden topic) instead of
 * retrying it at the head of the line forever. Called from the owning app's migration.
 */
export async function addOutboxParking(runner: QueryRunner, schema: string): Promise<void> {
  await runner.query(`ALTER TABLE "${schema}".outbox ADD COLUMN parked_at timestamptz, ADD COLUMN last_error text`);
  // Rows behind a parked row of the same topic and key are held back; this index answers that check.
  await runner.query(
    `CREATE INDEX outbox_parked ON "${schema}".outbox (topic, message_key, id) WHERE parked_at IS NOT NULL AND published_at IS NULL`,
  );
  // Pruning deletes published rows by age.
  await runner.query(
    `CREATE INDEX outbox_published_at ON "${schema}".outbox (published_at) WHERE published_at IS NOT NULL`,
  );
}
