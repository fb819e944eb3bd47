import { MigrationInterface, QueryRunner } from 'typeorm';
import { SCHEMA } from '../schema';

/**
 * Videos their owner deleted (`video.deleted.v1`): a job for one of them does not start, stops if it runs, and
 * discards what it made. One small row per deleted video, kept: a submitted event can be redelivered or replayed
 * long after the deletion.
 */
export class DeletedVideos1764400000000 implements MigrationInterface {
  name = 'DeletedVideos1764400000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE "${SCHEMA}".deleted_videos (
        video_id uuid PRIMARY KEY,
        deleted_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE "${SCHEMA}".deleted_videos`);
  }
}
