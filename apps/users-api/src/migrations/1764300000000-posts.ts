import { MigrationInterface, QueryRunner } from 'typeorm';
import { SCHEMA } from '../schema';

/** Posts: a version per row for optimistic concurrency (ETag / If-Match) and for the cache's version floor. */
export class Posts1764300000000 implements MigrationInterface {
  name = 'Posts1764300000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE "${SCHEMA}".posts (
        id uuid PRIMARY KEY,
        author_id uuid NOT NULL REFERENCES "${SCHEMA}".users (id),
        title text NOT NULL,
        body text NOT NULL,
        version int NOT NULL DEFAULT 1 CHECK (version > 0),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    // GET /posts pages newest first, by author or across all: (created_at, id) keyset.
    await runner.query(
      `CREATE INDEX posts_author_created_idx ON "${SCHEMA}".posts (author_id, created_at DESC, id DESC)`,
    );
    await runner.query(`CREATE INDEX posts_created_idx ON "${SCHEMA}".posts (created_at DESC, id DESC)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE "${SCHEMA}".posts`);
  }
}
