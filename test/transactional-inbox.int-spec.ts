import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import type { InboxKey } from '@app/messaging';
import {
  addInboxPruningIndex,
  createInboxTable,
  InboxBusyError,
  InboxRecord,
  InboxTransactionLostError,
  TypeOrmInbox,
} from '@app/inbox';
import { gate, within } from './support/gate';
import { createScratchSchema, ScratchSchema } from './support/scratch-database';
import { waitFor } from './support/wait';

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The transactional inbox against PostgreSQL: the row inserted in the handler's transaction dedupes an event per
 * group, a second run of a held key waits a bounded time, failed work leaves no row, the keep-alive outlasts the
 * idle-transaction timeout, and pruning goes by age.
 */
describe('transactional inbox', () => {
  const schema = 'app';
  const IDLE_TIMEOUT_MS = 800;
  let scratch: ScratchSchema;
  let dataSource: DataSource;
  let client: Client;

  const key = (group = 'email-service'): InboxKey => ({
    consumerGroup: group,
    eventId: randomUUID(),
    eventType: 'email.requested.v1',
    topic: 'emails',
    partition: 0,
    offset: '7',
  });
  const rows = async (k: InboxKey) =>
    (
      await client.query<{ consumer_group: string; offset: string }>(
        `SELECT consumer_group, "offset" FROM "${schema}".inbox WHERE event_id = $1`,
        [k.eventId],
      )
    ).rows;

  beforeAll(async () => {
    scratch = await createScratchSchema(
      schema,
      async (runner) => {
        await createInboxTable(runner, schema);
        await addInboxPruningIndex(runner, schema);
        await runner.query(`CREATE TABLE "${schema}".side (id int PRIMARY KEY, note text)`);
      },
      { schema, entities: [InboxRecord], extra: { idle_in_transaction_session_timeout: IDLE_TIMEOUT_MS } },
    );
    ({ dataSource, client } = scratch);
  });

  afterAll(async () => {
    await scratch?.close();
  });

  it('runs the work once per (group, event id): a redelivery is a duplicate, another group runs its own', async () => {
    const inbox = new TypeOrmInbox(dataSource);
    const k = key();
    let runs = 0;
    const work = () => Promise.resolve(void (runs += 1));
    expect(await inbox.run(k, work)).toBe('handled');
    expect(await inbox.run({ ...k, offset: '8' }, work)).toBe('duplicate');
    expect(runs).toBe(1);
    expect(await inbox.run({ ...k, consumerGroup: 'notifier' }, work)).toBe('handled');
    expect(runs).toBe(2);
    expect((await rows(k)).map((r) => [r.consumer_group, r.offset]).sort()).toEqual([
      ['email-service', '7'],
      ['notifier', '7'],
    ]);
  });

  it('a second run of a key another transaction holds gets InboxBusyError after the lock timeout, then a duplicate', async () => {
    const lockTimeoutMs = 300;
    const inbox = new TypeOrmInbox(dataSource, lockTimeoutMs);
    const k = key();
    const started = gate();
    const release = gate();
    const first = inbox.run(k, async () => {
      started.open();
      await release.promise;
    });
    let secondRan = false;
    try {
      await started.promise;
      const sentAt = Date.now();
      const second = inbox.run(k, () => Promise.resolve(void (secondRan = true)));
      second.catch(() => undefined);
      await expect(within(lockTimeoutMs + 3000, 'the second run', second)).rejects.toBeInstanceOf(InboxBusyError);
      const waited = Date.now() - sentAt;
      expect(waited).toBeGreaterThanOrEqual(lockTimeoutMs - 50);
      // Another event of the group is not held up by it.
      expect(await inbox.run(key(), () => Promise.resolve())).toBe('handled');
    } finally {
      release.open();
    }
    expect(await first).toBe('handled');
    expect(await inbox.run(k, () => Promise.resolve(void (secondRan = true)))).toBe('duplicate');
    expect(secondRan).toBe(false);
  });

  it('bounds only the wait on the inbox key: the work’s own statements wait for their locks as usual', async () => {
    const inbox = new TypeOrmInbox(dataSource, 200);
    await client.query(`INSERT INTO "${schema}".side (id, note) VALUES (1, 'before')`);
    const holder = new Client({ connectionString: scratch.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`UPDATE "${schema}".side SET note = 'holder' WHERE id = 1`);
      const run = inbox.run(key(), async (transaction?: EntityManager) => {
        await transaction!.query(`UPDATE "${schema}".side SET note = 'work' WHERE id = 1`);
      });
      await delay(700); // the holder keeps its lock well past the inbox's lock timeout
      await holder.query('COMMIT');
      expect(await run).toBe('handled');
    } finally {
      await holder.end();
    }
    const { rows: side } = await client.query<{ note: string }>(`SELECT note FROM "${schema}".side WHERE id = 1`);
    expect(side[0].note).toBe('work');
  });

  it('failed work rolls back the inbox row with the work’s own statements; the retry runs it', async () => {
    const inbox = new TypeOrmInbox(dataSource);
    const k = key();
    const failure = new Error('SMTP said no');
    await expect(
      inbox.run(k, async (transaction?: EntityManager) => {
        await transaction!.query(`INSERT INTO "${schema}".side (id, note) VALUES (2, 'half done')`);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await rows(k)).toEqual([]);
    expect((await client.query(`SELECT 1 FROM "${schema}".side WHERE id = 2`)).rowCount).toBe(0);
    let ran = false;
    expect(await inbox.run(k, () => Promise.resolve(void (ran = true)))).toBe('handled');
    expect(ran).toBe(true);
  });

  it('keeps the transaction alive through work longer than the idle-transaction timeout', async () => {
    const inbox = new TypeOrmInbox(dataSource);
    const k = key();
    let aborted: boolean | undefined;
    expect(
      await inbox.run(k, async (_transaction, lost) => {
        await delay(IDLE_TIMEOUT_MS * 3); // a slow SMTP server: no statement on the transaction meanwhile
        aborted = lost?.aborted;
      }),
    ).toBe('handled');
    expect(aborted).toBe(false);
    expect(await rows(k)).toHaveLength(1);
  });

  it('signals the work when its session ends, fails the run with InboxTransactionLostError, and commits nothing', async () => {
    const inbox = new TypeOrmInbox(dataSource);
    const k = key();
    const run = inbox.run(k, async (transaction?: EntityManager, lost?: AbortSignal) => {
      const [{ pid }] = await transaction!.query<{ pid: number }[]>('SELECT pg_backend_pid() AS pid');
      await client.query('SELECT pg_terminate_backend($1)', [pid]);
      await waitFor('the lost signal', () => lost?.aborted, { timeoutMs: IDLE_TIMEOUT_MS * 3, intervalMs: 20 });
      throw new Error('the work saw it lost its transaction');
    });
    await expect(run).rejects.toBeInstanceOf(InboxTransactionLostError);
    expect(await rows(k)).toEqual([]);
    expect(await inbox.run(k, () => Promise.resolve())).toBe('handled');
  });

  it('prunes the group’s rows processed longer ago than the retention, and no others', async () => {
    const inbox = new TypeOrmInbox(dataSource);
    const group = `prune-${randomUUID().slice(0, 8)}`;
    const [old, recent, otherGroup] = [key(group), key(group), key(`${group}-other`)];
    for (const [k, age] of [
      [old, '800 hours'],
      [recent, '1 hour'],
      [otherGroup, '800 hours'],
    ] as const) {
      await client.query(
        `INSERT INTO "${schema}".inbox (consumer_group, event_id, event_type, topic, "partition", "offset", processed_at)
         VALUES ($1, $2, 'email.requested.v1', 'emails', 0, 1, now() - $3::interval)`,
        [k.consumerGroup, k.eventId, age],
      );
    }
    expect(await inbox.prune(group, 720)).toBe(1);
    expect(await rows(old)).toEqual([]);
    expect(await rows(recent)).toHaveLength(1);
    expect(await rows(otherGroup)).toHaveLength(1);
  });
});
