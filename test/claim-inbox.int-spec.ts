import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import type { InboxKey } from '@app/messaging';
import { addClaimPruningIndex, ClaimInbox, ClaimLostError, createClaimTable, InboxBusyError } from '@app/inbox';
import { gate } from './support/gate';
import { createScratchSchema, ScratchSchema } from './support/scratch-database';

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The claim inbox's statements against PostgreSQL: a claim commits at once, a live one turns others away until its
 * lease ends, an expired one is taken over, only the holder's run records completion, settled claims are pruned.
 */
describe('claim inbox', () => {
  const schema = 'app';
  const table = `"${schema}".claims`;
  const LEASE_MS = 30_000;
  let scratch: ScratchSchema;
  let dataSource: DataSource;
  let client: Client;

  const key = (group = 'video-processor'): InboxKey => ({
    consumerGroup: group,
    eventId: randomUUID(),
    eventType: 'video.submitted.v1',
    topic: 'video-processing',
    partition: 0,
    offset: '0',
  });
  const inbox = (owner: string, leaseMs = LEASE_MS) => new ClaimInbox(dataSource, { schema, leaseMs, owner });
  interface ClaimRow {
    owner: string;
    runs: number;
    completed_at: Date | null;
    lease_until: Date;
    claimed_at: Date;
    lease_left_ms: number;
  }
  const row = async (k: InboxKey): Promise<ClaimRow | undefined> =>
    (
      await client.query<ClaimRow>(
        `SELECT owner, runs, completed_at, lease_until, claimed_at,
                (extract(epoch FROM lease_until - now()) * 1000)::float8 AS lease_left_ms
           FROM ${table} WHERE consumer_group = $1 AND event_id = $2`,
        [k.consumerGroup, k.eventId],
      )
    ).rows[0];
  /** A claim row as another consumer left it. */
  const leftBy = (k: InboxKey, owner: string, leaseUntil: string, completedAt = 'NULL', runs = 1) =>
    client.query(
      `INSERT INTO ${table} (consumer_group, event_id, event_type, owner, lease_until, completed_at, runs)
       VALUES ($1, $2, $3, $4, ${leaseUntil}, ${completedAt}, $5)`,
      [k.consumerGroup, k.eventId, k.eventType, owner, runs],
    );

  beforeAll(async () => {
    scratch = await createScratchSchema(schema, async (runner) => {
      await createClaimTable(runner, schema);
      await addClaimPruningIndex(runner, schema);
    });
    ({ dataSource, client } = scratch);
  });

  afterAll(async () => {
    await scratch?.close();
  });

  it('commits the claim before the work, with no transaction open, records completion, skips a redelivery', async () => {
    const k = key();
    let during: ClaimRow | undefined;
    let openTransactions = -1;
    let transaction: unknown = 'none given';
    expect(
      await inbox('a').run(k, async (tx) => {
        transaction = tx;
        during = await row(k);
        const { rows } = await client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND state LIKE 'idle in transaction%'`,
        );
        openTransactions = rows[0].n;
      }),
    ).toBe('handled');
    expect(transaction).toBeUndefined();
    expect(openTransactions).toBe(0);
    expect(during).toMatchObject({ owner: 'a', runs: 1, completed_at: null });
    expect(during!.lease_left_ms).toBeGreaterThan(LEASE_MS - 5000);
    expect(await row(k)).toMatchObject({ owner: 'a', runs: 1, completed_at: expect.any(Date) });
    let ran = false;
    expect(await inbox('b').run(k, () => Promise.resolve(void (ran = true)))).toBe('duplicate');
    expect(await inbox('a').run(k, () => Promise.resolve(void (ran = true)))).toBe('duplicate');
    expect(ran).toBe(false);
  });

  it('turns another consumer away while the claim is live, with the lease left as retryAfterMs', async () => {
    const k = key();
    const started = gate();
    const release = gate();
    const first = inbox('a').run(k, async () => {
      started.open();
      await release.promise;
    });
    try {
      await started.promise;
      const busy = await inbox('b')
        .run(k, () => Promise.resolve())
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(busy).toBeInstanceOf(InboxBusyError);
      expect((busy as InboxBusyError).message).toMatch(/claimed by a of group video-processor/);
      const retryAfterMs = (busy as InboxBusyError).retryAfterMs!;
      expect(retryAfterMs).toBeGreaterThan(LEASE_MS - 5000);
      expect(retryAfterMs).toBeLessThanOrEqual(LEASE_MS);
    } finally {
      release.open();
    }
    expect(await first).toBe('handled');
    expect(await inbox('b').run(k, () => Promise.resolve())).toBe('duplicate');
  });

  it('takes over a claim whose lease ran out without completion, once, and leaves a completed one alone', async () => {
    const expired = key();
    await leftBy(expired, 'dead', "now() - interval '1 second'");
    let runs = 0;
    expect(await inbox('b').run(expired, () => Promise.resolve(void (runs += 1)))).toBe('handled');
    expect(await row(expired)).toMatchObject({ owner: 'b', runs: 2, completed_at: expect.any(Date) });
    const done = key();
    await leftBy(done, 'dead', "now() - interval '1 hour'", "now() - interval '1 hour'");
    expect(await inbox('b').run(done, () => Promise.resolve(void (runs += 1)))).toBe('duplicate');
    expect(await row(done)).toMatchObject({ owner: 'dead', runs: 1 });
    expect(runs).toBe(1);
  });

  it('a live claim of this same owner (an attempt whose answer was lost) is taken again at once', async () => {
    const k = key();
    await leftBy(k, 'a', "now() + interval '1 minute'");
    expect(
      await inbox('b')
        .run(k, () => Promise.resolve())
        .catch((error: unknown) => error),
    ).toBeInstanceOf(InboxBusyError);
    expect(await inbox('a').run(k, () => Promise.resolve())).toBe('handled');
    expect(await row(k)).toMatchObject({ owner: 'a', runs: 2, completed_at: expect.any(Date) });
  });

  it('records completion only for the run that holds the claim', async () => {
    const k = key();
    const started = gate();
    const release = gate();
    const first = inbox('a').run(k, async () => {
      started.open();
      await release.promise;
    });
    first.catch(() => undefined);
    let completedByB: ClaimRow | undefined;
    try {
      await started.promise;
      // a's lease runs out in the database (a frozen or partitioned host); b takes the claim and completes it.
      await client.query(`UPDATE ${table} SET lease_until = now() - interval '1 second' WHERE event_id = $1`, [
        k.eventId,
      ]);
      expect(await inbox('b').run(k, () => Promise.resolve())).toBe('handled');
      completedByB = await row(k);
      expect(completedByB).toMatchObject({ owner: 'b', runs: 2, completed_at: expect.any(Date) });
    } finally {
      release.open();
    }
    await expect(first).rejects.toBeInstanceOf(ClaimLostError);
    const { lease_left_ms: _, ...settled } = completedByB!;
    expect(await row(k)).toMatchObject(settled);
  });

  it('a failed run releases its claim at once: another consumer takes it without waiting for the lease', async () => {
    const k = key();
    const failure = new Error('transcoder crashed');
    await expect(inbox('a').run(k, () => Promise.reject(failure))).rejects.toBe(failure);
    const released = await row(k);
    expect(released).toMatchObject({ owner: 'a', runs: 1, completed_at: null });
    expect(released!.lease_left_ms).toBeLessThanOrEqual(0);
    expect(await inbox('b').run(k, () => Promise.resolve())).toBe('handled');
    expect(await row(k)).toMatchObject({ owner: 'b', runs: 2 });
  });

  it('renews the lease while work runs longer than it', async () => {
    const leaseMs = 900;
    const k = key();
    let renewedBy = 0;
    expect(
      await inbox('a', leaseMs).run(k, async (_tx, lost) => {
        await delay(leaseMs * 2);
        const held = await row(k);
        renewedBy = held!.lease_until.getTime() - held!.claimed_at.getTime() - leaseMs;
        if (lost?.aborted) throw lost.reason;
      }),
    ).toBe('handled');
    expect(renewedBy).toBeGreaterThan(leaseMs / 2);
    expect(await row(k)).toMatchObject({ owner: 'a', runs: 1, completed_at: expect.any(Date) });
  });

  it('prunes the group’s claims settled longer ago than the retention, and no others', async () => {
    const group = `prune-${randomUUID().slice(0, 8)}`;
    const claims = {
      completedLongAgo: [key(group), "now() - interval '1 minute'", "now() - interval '3 hours'"],
      completedJustNow: [key(group), "now() - interval '1 minute'", 'now()'],
      running: [key(group), "now() + interval '1 minute'", 'NULL'],
      givenUpLongAgo: [key(group), "now() - interval '3 hours'", 'NULL'],
      otherGroup: [key(`${group}-other`), "now() - interval '4 hours'", "now() - interval '3 hours'"],
    } as const;
    for (const [k, leaseUntil, completedAt] of Object.values(claims))
      await leftBy(k, 'someone', leaseUntil, completedAt);
    expect(await inbox('a').prune(group, 2)).toBe(2);
    const present: string[] = [];
    for (const [name, [k]] of Object.entries(claims)) if (await row(k)) present.push(name);
    expect(present.sort()).toEqual(['completedJustNow', 'otherGroup', 'running']);
  });
});
