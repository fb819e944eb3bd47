import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { addOutboxParking, createOutboxTable, outboxChannel, OutboxRepository, poolOf } from '@app/outbox';
import { createScratchSchema, ScratchSchema } from './support/scratch-database';
import { waitFor } from './support/wait';

/**
 * The outbox's statements against PostgreSQL: the relay's over the app's pool, the operator's over a client of its
 * own, as each runs them. Rows are written here with plain SQL and read back the same way.
 */
describe('outbox repository', () => {
  const schema = 'app';
  const table = `"${schema}".outbox`;
  let scratch: ScratchSchema;
  let dataSource: DataSource;
  let client: Client;
  let relay: OutboxRepository;
  let operator: OutboxRepository;

  beforeAll(async () => {
    scratch = await createScratchSchema(schema, async (runner) => {
      await createOutboxTable(runner, schema);
      await addOutboxParking(runner, schema);
    });
    ({ dataSource, client } = scratch);
    relay = new OutboxRepository(poolOf(dataSource), schema);
    operator = new OutboxRepository(client, schema);
  });

  afterAll(async () => {
    await scratch?.close();
  });

  beforeEach(async () => {
    await client.query(`TRUNCATE ${table}`);
  });

  interface Insert {
    topic?: string;
    key: string;
    value?: string;
    created?: string;
    published?: string;
    parked?: boolean;
  }

  /** Inserts rows in this order (ids ascending); returns their ids. */
  const insert = async (...rows: Insert[]): Promise<string[]> => {
    const ids: string[] = [];
    for (const row of rows) {
      const { rows: inserted } = await client.query<{ id: string }>(
        `INSERT INTO ${table} (event_id, event_type, topic, message_key, value, headers, created_at, published_at, parked_at)
         VALUES ($1, 'user.registered.v1', $2, $3, $4, '{"ce_id":"x"}', now() - $5::interval,
                 CASE WHEN $6::interval IS NULL THEN NULL ELSE now() - $6::interval END,
                 CASE WHEN $7 THEN now() END)
         RETURNING id`,
        [
          randomUUID(),
          row.topic ?? 'users',
          row.key,
          row.value ?? '{}',
          row.created ?? '0',
          row.published ?? null,
          !!row.parked,
        ],
      );
      ids.push(inserted[0].id);
    }
    return ids;
  };

  const ids = (rows: { id: string }[]) => rows.map((row) => row.id);

  const state = async (id: string) =>
    (
      await client.query<{ published: boolean; parked: boolean; attempts: number; last_error: string | null }>(
        `SELECT published_at IS NOT NULL AS published, parked_at IS NOT NULL AS parked, attempts, last_error
           FROM ${table} WHERE id = $1`,
        [id],
      )
    ).rows[0];

  it('gives the oldest unpublished rows in id order, at most the limit, leaving out published rows and `skip`', async () => {
    const [a, , c, d, e, f] = await insert(
      { key: 'k1' },
      { key: 'k2', published: '1 minute' },
      { key: 'k1' },
      { key: 'k3', topic: 'posts' },
      { key: 'k2' },
      { key: 'k4' },
    );
    expect(ids(await relay.nextBatch(10, []))).toEqual([a, c, d, e, f]);
    expect(ids(await relay.nextBatch(3, []))).toEqual([a, c, d]);
    expect(ids(await relay.nextBatch(3, [a, d]))).toEqual([c, e, f]);
    const [row] = await relay.nextBatch(1, []);
    expect(row).toEqual({
      id: a,
      event_id: expect.any(String),
      event_type: 'user.registered.v1',
      topic: 'users',
      message_key: 'k1',
      value: '{}',
      headers: { ce_id: 'x' },
    });
  });

  it('holds back every later row of a parked row’s topic and key, and only those', async () => {
    const [before, parked, after1, otherKey, otherTopic, after2] = await insert(
      { key: 'k1' },
      { key: 'k1' },
      { key: 'k1' },
      { key: 'k2' },
      { key: 'k1', topic: 'posts' },
      { key: 'k1' },
    );
    await relay.park(parked, 'MESSAGE_TOO_LARGE', 1);
    expect(ids(await relay.nextBatch(10, []))).toEqual([before, otherKey, otherTopic]);
    expect(ids(await relay.nextBatch(2, [before]))).toEqual([otherKey, otherTopic]);
    expect(await state(parked)).toEqual({
      published: false,
      parked: true,
      attempts: 1,
      last_error: 'MESSAGE_TOO_LARGE',
    });
    // A parked row that was published after all (sent before it was parked) holds nothing back.
    await relay.markPublished([parked]);
    expect(ids(await relay.nextBatch(10, []))).toEqual([before, after1, otherKey, otherTopic, after2]);
  });

  it('marks rows published: they leave the batch and the backlog', async () => {
    const [a, b, c] = await insert({ key: 'k1' }, { key: 'k1' }, { key: 'k2' });
    await relay.markPublished([a, c]);
    expect(ids(await relay.nextBatch(10, []))).toEqual([b]);
    expect(await state(a)).toMatchObject({ published: true, parked: false });
    expect((await relay.backlog()).pending).toBe(1);
  });

  it('counts failed sends per row and parks with the attempts added', async () => {
    const [a] = await insert({ key: 'k1' });
    expect(await relay.noteFailure(a, 'first', 1)).toBe(1);
    expect(await relay.noteFailure(a, 'an outage', 0)).toBe(1);
    expect(await relay.noteFailure(a, 'second', 1)).toBe(2);
    expect(await state(a)).toEqual({ published: false, parked: false, attempts: 2, last_error: 'second' });
    await relay.park(a, 'gone for good', 0);
    expect(await state(a)).toEqual({ published: false, parked: true, attempts: 2, last_error: 'gone for good' });
    expect(await relay.noteFailure('999999', 'no such row', 1)).toBe(0);
  });

  it('reports pending (parked included), parked and the age of the oldest unpublished row', async () => {
    expect(await operator.backlog()).toEqual({ pending: 0, parked: 0, oldestPendingSeconds: 0 });
    await insert(
      { key: 'k1', created: '10 minutes', published: '5 minutes' },
      { key: 'k1', created: '90 seconds', parked: true },
      { key: 'k2', created: '30 seconds' },
      { key: 'k3' },
    );
    const backlog = await relay.backlog();
    expect(backlog).toEqual({ pending: 3, parked: 1, oldestPendingSeconds: expect.any(Number) });
    expect(backlog.oldestPendingSeconds).toBeGreaterThanOrEqual(90);
    expect(backlog.oldestPendingSeconds).toBeLessThan(120);
  });

  it('prunes published rows older than the retention, chunk after chunk; pending and parked rows stay', async () => {
    await client.query(
      `INSERT INTO ${table} (event_id, event_type, topic, message_key, value, published_at)
       SELECT gen_random_uuid(), 'user.registered.v1', 'users', 'bulk', '{}', now() - interval '3 hours'
         FROM generate_series(1, 12001)`,
    );
    const kept = await insert(
      { key: 'k1', published: '1 hour' },
      { key: 'k1', created: '30 hours' },
      { key: 'k1', created: '30 hours', parked: true },
    );
    const [old] = await insert({ key: 'k2', created: '30 hours', published: '25 hours' });
    expect(await relay.prune(2)).toBe(12002);
    const { rows } = await client.query<{ id: string }>(`SELECT id FROM ${table} ORDER BY id`);
    expect(ids(rows)).toEqual(kept);
    expect(ids(rows)).not.toContain(old);
    expect(await relay.prune(2)).toBe(0);
  });

  it('lists parked rows with the rows waiting behind each, and says what the other ids are', async () => {
    const [p1, , pub, p2, pending] = await insert(
      { key: 'k1', value: 'x'.repeat(3000) },
      { key: 'k1' },
      { key: 'k1', published: '1 minute' },
      { key: 'k2', topic: 'posts' },
      { key: 'k3' },
    );
    await relay.park(p1, 'too large', 1);
    await relay.park(p2, 'topic gone', 3);
    const listed = await operator.parked('all');
    expect(listed.map((row) => [row.id, row.held, row.bytes, row.attempts, row.last_error])).toEqual([
      [p1, 1, 3000, 1, 'too large'],
      [p2, 0, 2, 3, 'topic gone'],
    ]);
    expect(listed[0].parked_at).toBeInstanceOf(Date);
    expect(ids(await operator.parked([p2, pending]))).toEqual([p2]);
    expect(await operator.states([pub, pending, '999999'])).toEqual(
      expect.arrayContaining([
        { id: pub, published: true },
        { id: pending, published: false },
      ]),
    );
    expect(await operator.states(['999999'])).toEqual([]);
    const excerpt = await operator.excerpt(p1);
    expect(excerpt).toMatchObject({ id: p1, topic: 'users', message_key: 'k1', value_bytes: 3000 });
    expect((excerpt?.value as string).length).toBe(2000);
  });

  /** A listener on the relay's channel, as the relay waits for work. */
  const listen = async () => {
    const listener = new Client({ connectionString: scratch.url });
    await listener.connect();
    let notified = 0;
    listener.on('notification', () => (notified += 1));
    await listener.query(`LISTEN ${outboxChannel(schema)}`);
    return { notified: () => notified, end: () => listener.end() };
  };

  it('un-parks rows with their attempts reset, wakes the relay, and the rows behind them are sent again', async () => {
    const [parked, behind, published] = await insert({ key: 'k1' }, { key: 'k1' }, { key: 'k2' });
    await relay.park(parked, 'refused', 4);
    await relay.markPublished([published]);
    await client.query(`UPDATE ${table} SET parked_at = now() WHERE id = $1`, [published]);
    expect(ids(await relay.nextBatch(10, []))).toEqual([]);
    const listener = await listen();
    try {
      await operator.unpark([parked, published]);
      await waitFor('the relay channel to be notified', () => listener.notified() > 0, { timeoutMs: 5000 });
    } finally {
      await listener.end();
    }
    expect(await state(parked)).toEqual({ published: false, parked: false, attempts: 0, last_error: 'refused' });
    // A published row is not touched.
    expect(await state(published)).toMatchObject({ published: true, parked: true });
    expect(ids(await relay.nextBatch(10, []))).toEqual([parked, behind]);
  });

  it('drops only parked rows among the ids, wakes the relay, and the rows behind go out', async () => {
    const [parked, behind, pending] = await insert({ key: 'k1' }, { key: 'k1' }, { key: 'k2' });
    await relay.park(parked, 'refused', 1);
    const listener = await listen();
    try {
      await operator.dropParked([parked, pending]);
      await waitFor('the relay channel to be notified', () => listener.notified() > 0, { timeoutMs: 5000 });
    } finally {
      await listener.end();
    }
    expect(await state(parked)).toBeUndefined();
    expect(ids(await relay.nextBatch(10, []))).toEqual([behind, pending]);
  });
});
