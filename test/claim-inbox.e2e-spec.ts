import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { ensureDatabase } from '@app/database';
import { ClaimInbox, ClaimLostError, createClaimTable, InboxBusyError, InboxKey } from '@app/messaging';
import { TEST_DATABASE_URL } from './support/env';

/** The claim-mode inbox against PostgreSQL: once, never twice at the same time, again after an owner died. */
describe('claim-mode inbox', () => {
  const schema = `claims_${randomUUID().slice(0, 8)}`;
  const dataSource = new DataSource({ type: 'postgres', url: TEST_DATABASE_URL });
  const key = (): InboxKey => ({
    consumerGroup: 'video-processor',
    eventId: randomUUID(),
    eventType: 'email.requested.v1',
    topic: 'video-processing',
    partition: 0,
    offset: '0',
  });
  const inbox = (leaseMs = 3000) => new ClaimInbox(dataSource, { schema, leaseMs });
  const row = async (k: InboxKey) =>
    (
      await dataSource.query<{ owner: string; runs: number; completed: boolean }[]>(
        `SELECT owner, runs, completed_at IS NOT NULL AS completed FROM "${schema}".claims WHERE event_id = $1`,
        [k.eventId],
      )
    )[0];

  beforeAll(async () => {
    await ensureDatabase(TEST_DATABASE_URL);
    await dataSource.initialize();
    const runner = dataSource.createQueryRunner();
    await runner.query(`CREATE SCHEMA "${schema}"`);
    await createClaimTable(runner, schema);
    await runner.release();
  });

  afterAll(async () => {
    await dataSource.query(`DROP SCHEMA "${schema}" CASCADE`);
    await dataSource.destroy();
  });

  it('runs the work with no transaction open, records completion, and skips the event on redelivery', async () => {
    const k = key();
    let runs = 0;
    const work = async () => {
      runs += 1;
      // No transaction is held while the work runs: the claim is already visible to others.
      expect((await row(k)).completed).toBe(false);
    };
    expect(await inbox().run(k, work)).toBe('handled');
    expect(await inbox().run(k, work)).toBe('duplicate');
    expect(runs).toBe(1);
    expect(await row(k)).toMatchObject({ runs: 1, completed: true });
  });

  it('never runs an event twice at the same time: a live claim makes the second consumer retry later', async () => {
    const k = key();
    const first = inbox();
    let release!: () => void;
    const running = first.run(k, () => new Promise<void>((resolve) => (release = resolve)));
    for (let i = 0; i < 50 && !(await row(k)); i++) await new Promise((r) => setTimeout(r, 20));
    await expect(inbox().run(k, () => Promise.resolve())).rejects.toBeInstanceOf(InboxBusyError);
    release();
    expect(await running).toBe('handled');
  });

  it('renews its lease while the work runs longer than the lease', async () => {
    const k = key();
    const long = inbox(600);
    const other = inbox(600);
    const running = long.run(k, () => new Promise<void>((resolve) => setTimeout(resolve, 1500)));
    await new Promise((r) => setTimeout(r, 1000));
    // Past the first lease, and still held: renewed.
    await expect(other.run(k, () => Promise.resolve())).rejects.toBeInstanceOf(InboxBusyError);
    expect(await running).toBe('handled');
    expect(await row(k)).toMatchObject({ owner: long.owner, runs: 1, completed: true });
  });

  it('runs again, once, after its owner died (the lease ran out without completion)', async () => {
    const k = key();
    // What a consumer killed mid-job leaves: a claim that never completed, its lease run out.
    await dataSource.query(
      `INSERT INTO "${schema}".claims (consumer_group, event_id, event_type, owner, lease_until)
       VALUES ($1, $2, $3, 'dead-host-1-x', now() - interval '1 second')`,
      [k.consumerGroup, k.eventId, k.eventType],
    );
    let runs = 0;
    const [a, b] = [inbox(), inbox()];
    const results = await Promise.allSettled([
      a.run(k, async () => {
        runs += 1;
        await new Promise((r) => setTimeout(r, 200));
      }),
      b.run(k, async () => {
        runs += 1;
        await new Promise((r) => setTimeout(r, 200));
      }),
    ]);
    expect(runs).toBe(1);
    expect(
      results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<string>).value),
    ).toEqual(['handled']);
    expect(await row(k)).toMatchObject({ runs: 2, completed: true });
  });

  it('a failed run releases its claim at once, so the retry does not wait for the lease', async () => {
    const k = key();
    await expect(inbox(60_000).run(k, () => Promise.reject(new Error('ffmpeg exited 1')))).rejects.toThrow('ffmpeg');
    expect(await inbox(60_000).run(k, () => Promise.resolve())).toBe('handled');
    expect(await row(k)).toMatchObject({ runs: 2, completed: true });
  });

  it('a run whose claim passed to another (its lease ran out while it worked) does not record completion', async () => {
    const k = key();
    const slow = inbox(60_000);
    const running = slow.run(k, async () => {
      // Another consumer takes over as if this one had frozen past its lease.
      await dataSource.query(
        `UPDATE "${schema}".claims SET owner = 'other', lease_until = now() + interval '1 minute' WHERE event_id = $1`,
        [k.eventId],
      );
    });
    await expect(running).rejects.toBeInstanceOf(ClaimLostError);
    expect(await row(k)).toMatchObject({ owner: 'other', completed: false });
  });
});
