import { MigrationInterface, QueryRunner } from 'typeorm';
import { SCHEMA } from '../schema';

/**
 * Sign-in: a role per user, refresh tokens (hashed, single-use, in families that are revoked together) and failed
 * sign-ins counted per account and per client address, so that every replica throttles alike.
 */
export class Sessions1764400000000 implements MigrationInterface {
  name = 'Sessions1764400000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(
      `ALTER TABLE "${SCHEMA}".users ADD COLUMN role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin'))`,
    );
    await runner.query(`
      CREATE TABLE "${SCHEMA}".refresh_tokens (
        id uuid PRIMARY KEY,
        family_id uuid NOT NULL,
        user_id uuid NOT NULL REFERENCES "${SCHEMA}".users (id) ON DELETE CASCADE,
        token_hash bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        revoked_at timestamptz
      )`);
    await runner.query(`CREATE INDEX refresh_tokens_family ON "${SCHEMA}".refresh_tokens (family_id)`);
    await runner.query(`CREATE INDEX refresh_tokens_expiry ON "${SCHEMA}".refresh_tokens (expires_at)`);
    await runner.query(`
      CREATE TABLE "${SCHEMA}".sign_in_failures (
        key text PRIMARY KEY,
        failures int NOT NULL,
        window_ends_at timestamptz NOT NULL
      )`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE "${SCHEMA}".sign_in_failures`);
    await runner.query(`DROP TABLE "${SCHEMA}".refresh_tokens`);
    await runner.query(`ALTER TABLE "${SCHEMA}".users DROP COLUMN role`);
  }
}
