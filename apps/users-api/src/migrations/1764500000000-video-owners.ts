import { MigrationInterface, QueryRunner } from 'typeorm';
import { SCHEMA } from '../schema';

/**
 * A video belongs to the user who uploaded it: only they read its status and renditions or delete it. Videos uploaded
 * before owners were recorded have none and are nobody's (404 to everyone).
 */
export class VideoOwners1764500000000 implements MigrationInterface {
  name = 'VideoOwners1764500000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`ALTER TABLE "${SCHEMA}".videos ADD COLUMN owner_id uuid REFERENCES "${SCHEMA}".users (id)`);
    await runner.query(`CREATE INDEX videos_owner ON "${SCHEMA}".videos (owner_id)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP INDEX "${SCHEMA}".videos_owner`);
    await runner.query(`ALTER TABLE "${SCHEMA}".videos DROP COLUMN owner_id`);
  }
}
