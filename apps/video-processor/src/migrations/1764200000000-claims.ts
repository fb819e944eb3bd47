import { MigrationInterface, QueryRunner } from 'typeorm';
import { createClaimTable } from '@app/inbox';
import { SCHEMA } from '../schema';

export class Claims1764200000000 implements MigrationInterface {
  name = 'Claims1764200000000';

  async up(runner: QueryRunner): Promise<void> {
    await createClaimTable(runner, SCHEMA);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE "${SCHEMA}".claims`);
  }
}
