import { MigrationInterface, QueryRunner } from 'typeorm';
import { addInboxPruningIndex, createInboxTable } from '@app/inbox';
import { SCHEMA } from '../schema';

/** Videos and their processing state; the inbox of users-api's own consumer group (video results). */
export class Videos1764200000000 implements MigrationInterface {
  name = 'Videos1764200000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE "${SCHEMA}".videos (
        id uuid PRIMARY KEY,
        status text NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
        progress int NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
        source_key text NOT NULL,
        container text NOT NULL,
        size_bytes bigint NOT NULL,
        metadata jsonb,
        thumbnail_key text,
        preview_key text,
        error text,
        attempts int NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await createInboxTable(runner, SCHEMA);
    // Inbox records are pruned by age (INBOX_RETENTION_HOURS), as in email-service.
    await addInboxPruningIndex(runner, SCHEMA);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE "${SCHEMA}".inbox`);
    await runner.query(`DROP TABLE "${SCHEMA}".videos`);
  }
}
