import type { QueryRunner } from 'typeorm';

/** DDL for an app's claims table (claim-mode inbox); called from that app's migration. */
export async function createClaimTable(runner: QueryRunner, schema: string): Promise<void> {
  await runner.query(`
    CREATE TABLE "${schema}".claims (
      consumer_group text NOT NULL,
      event_id uuid NOT NULL,
      event_type text NOT NULL,
      owner text NOT NULL,
      lease_until timestamptz NOT NULL,
      runs int NOT NULL DEFAULT 1,
      claimed_at timestamptz NOT NULL DEFAULT now(),
      completed_at timestamptz,
      PRIMARY KEY (consumer_group, event_id)
    )`);
}

/**
 * Index for pruning by age (ClaimInbox.prune): a claim is settled when it completed, or, never completed, when its
 * last lease ended (a job given up on). Called from the owning app's migration.
 */
export async function addClaimPruningIndex(runner: QueryRunner, schema: string): Promise<void> {
  await runner.query(
    `CREATE INDEX claims_settled_at ON "${schema}".claims (consumer_group, (coalesce(completed_at, lease_until)))`,
  );
}
