import { MigrationInterface, QueryRunner } from 'typeorm';
import { createInboxTable } from '@app/inbox';
import { SCHEMA } from '../schema';

export class Inbox1764000000000 implements MigrationInterface {
  name = 'Inbox1764000000000';

  async up(runner: QueryRunner): Promise<void> {
    await createInboxTable(runner, SCHEMA);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE "${SCHEMA}".inbox`);
  }
}
