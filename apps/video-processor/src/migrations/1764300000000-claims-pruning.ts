import { MigrationInterface, QueryRunner } from 'typeorm';
import { addClaimPruningIndex } from '@app/inbox';
import { SCHEMA } from '../schema';

/** Settled claims are pruned by age (INBOX_RETENTION_HOURS): an index on when each settled. */
export class ClaimsPruning1764300000000 implements MigrationInterface {
  name = 'ClaimsPruning1764300000000';

  async up(runner: QueryRunner): Promise<void> {
    await addClaimPruningIndex(runner, SCHEMA);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP INDEX "${SCHEMA}".claims_settled_at`);
  }
}
