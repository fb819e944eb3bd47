import { MigrationInterface, QueryRunner } from 'typeorm';
import { createOutboxTable } from '@app/outbox';
import { SCHEMA } from '../schema';

export class Initial1764000000000 implements MigrationInterface {
  name = 'Initial1764000000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE "${SCHEMA}".users (
        id uuid PRIMARY KEY,
        email text NOT NULL CONSTRAINT users_email_key UNIQUE,
        username text NOT NULL,
        password_hash text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await runner.query(`CREATE UNIQUE INDEX users_username_lower_key ON "${SCHEMA}".users (lower(username))`);
    await createOutboxTable(runner, SCHEMA);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE "${SCHEMA}".outbox`);
    await runner.query(`DROP FUNCTION "${SCHEMA}".outbox_notify()`);
    await runner.query(`DROP TABLE "${SCHEMA}".users`);
  }
}
