import { MigrationInterface, QueryRunner } from 'typeorm';
import { addOutboxParking } from '@app/outbox';
import { SCHEMA } from '../schema';

export class OutboxParking1764100000000 implements MigrationInterface {
  name = 'OutboxParking1764100000000';

  async up(runner: QueryRunner): Promise<void> {
    await addOutboxParking(runner, SCHEMA);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP INDEX "${SCHEMA}".outbox_published_at`);
    await runner.query(`DROP INDEX "${SCHEMA}".outbox_parked`);
    await runner.query(`ALTER TABLE "${SCHEMA}".outbox DROP COLUMN parked_at, DROP COLUMN last_error`);
  }
}
