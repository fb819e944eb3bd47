import { Client } from 'pg';

/** The ids of the welcome-email events the outbox holds for these users. */
export async function emailEventIds(db: Client, userIds: string[]): Promise<string[]> {
  const { rows } = await db.query<{ event_id: string }>(
    `SELECT event_id FROM users_api.outbox WHERE message_key = ANY($1) AND event_type = 'email.requested.v1'`,
    [userIds],
  );
  return rows.map((row) => row.event_id);
}

/** Outbox rows of these users that the relay marked published. */
export async function publishedCount(db: Client, userIds: string[]): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM users_api.outbox WHERE message_key = ANY($1) AND published_at IS NOT NULL',
    [userIds],
  );
  return rows[0].n;
}
