import { MigrationInterface, QueryRunner } from 'typeorm';
import { addInboxPruningIndex } from '@app/inbox';
import { SCHEMA } from '../schema';

export class InboxPruning1764100000000 implements MigrationInterface {
  name = 'InboxPruning1764100000000';

  async up(runner: QueryRunner): Promise<void> {
    await addInboxPruningIndex(runner, SCHEMA);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP INDEX "${SCHEMA}".inbox_processed_at`);
  }
}
