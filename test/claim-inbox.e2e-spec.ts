import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DataSource } from 'typeorm';
import { ensureDatabase } from '@app/database';
import { Client } from 'pg';
import { ALL_TOPICS } from '@app/contracts';
import { ensureTopics, InboxKey, retryTopicOf } from '@app/messaging';
import {
  addClaimPruningIndex,
  ClaimInbox,
  ClaimLostError,
  ClaimStoreTimeoutError,
  createClaimTable,
  InboxBusyError,
} from '@app/inbox';
import { testKafka } from './support/broker';
import { ChildApp } from './support/child-app';
import { TEST_DATABASE_URL } from './support/env';
import { EmailEvents, startGroupAtEnd, waitForDrained } from './support/kafka';
import { TcpProxy } from './support/tcp-proxy';
import { waitFor } from './support/wait';

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
    await addClaimPruningIndex(runner, schema);
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

  it('stops the work at the next renewal once its claim was taken over, instead of running beside the new owner', async () => {
    const k = key();
    let stoppedBy: unknown;
    const running = inbox(1200).run(k, async (_transaction, lost) => {
      // A consumer that froze past its lease: another took the job over while this one still works.
      await dataSource.query(
        `UPDATE "${schema}".claims SET owner = 'other', lease_until = now() + interval '1 minute' WHERE event_id = $1`,
        [k.eventId],
      );
      // The job would run for a minute; the lost claim has to stop it (renewals come every 400 ms).
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, 60_000);
        lost!.addEventListener('abort', () => {
          clearTimeout(timer);
          stoppedBy = lost!.reason;
          reject(new Error('ffmpeg stopped'));
        });
      });
    });
    const started = Date.now();
    await expect(running).rejects.toBeInstanceOf(ClaimLostError);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(stoppedBy).toBeInstanceOf(ClaimLostError);
    expect(await row(k)).toMatchObject({ owner: 'other', completed: false });
  });

  it('prunes the claims of a group settled longer ago than the retention, and no others', async () => {
    const group = `prune-${randomUUID().slice(0, 8)}`;
    const claims: [string, string, string | null][] = [
      ['completed long ago', "now() - interval '1 minute'", "now() - interval '3 hours'"],
      ['completed a moment ago', "now() - interval '1 minute'", 'now()'],
      ['running', "now() + interval '1 minute'", null],
      ['given up long ago', "now() - interval '3 hours'", null],
    ];
    const ids = new Map<string, string>();
    for (const [what, leaseUntil, completedAt] of claims) {
      ids.set(what, randomUUID());
      await dataSource.query(
        `INSERT INTO "${schema}".claims (consumer_group, event_id, event_type, owner, lease_until, completed_at)
         VALUES ($1, $2, 'email.requested.v1', 'someone', ${leaseUntil}, ${completedAt ?? 'NULL'})`,
        [group, ids.get(what)],
      );
    }
    // Another group's old claim is not this group's to prune.
    await dataSource.query(
      `INSERT INTO "${schema}".claims (consumer_group, event_id, event_type, owner, lease_until, completed_at)
       VALUES ($1, $2, 'email.requested.v1', 'someone', now() - interval '4 hours', now() - interval '3 hours')`,
      [`${group}-other`, randomUUID()],
    );
    expect(await inbox().prune(group, 2)).toBe(2);
    const left = await dataSource.query<{ event_id: string }[]>(
      `SELECT event_id FROM "${schema}".claims WHERE consumer_group = $1 ORDER BY event_id`,
      [group],
    );
    expect(left.map((r) => r.event_id)).toEqual([ids.get('completed a moment ago'), ids.get('running')].sort());
    const [other] = await dataSource.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM "${schema}".claims WHERE consumer_group = $1`,
      [`${group}-other`],
    );
    expect(other.n).toBe(1);
  });
});

/**
 * The claim's connection to PostgreSQL goes silent (a TCP proxy that drops every byte, sockets left open), as a
 * partition looks from both ends: nothing fails, nothing answers. The lease must run out on this side no later than
 * in the database, whatever the renewals do, and every claim statement must end in bounded time.
 */
describe('claim-mode inbox: a silent database connection', () => {
  const schema = `claims_silent_${randomUUID().slice(0, 8)}`;
  const direct = new DataSource({ type: 'postgres', url: TEST_DATABASE_URL });
  let proxy: TcpProxy;
  let proxied: DataSource;
  const key = (): InboxKey => ({
    consumerGroup: 'silent',
    eventId: randomUUID(),
    eventType: 'email.requested.v1',
    topic: 'emails',
    partition: 0,
    offset: '0',
  });
  const row = async (k: InboxKey) =>
    (
      await direct.query<{ owner: string; runs: number; completed: boolean; lease_until: Date }[]>(
        `SELECT owner, runs, completed_at IS NOT NULL AS completed, lease_until FROM "${schema}".claims WHERE event_id = $1`,
        [k.eventId],
      )
    )[0];

  beforeAll(async () => {
    await ensureDatabase(TEST_DATABASE_URL);
    await direct.initialize();
    await direct.query(`CREATE SCHEMA "${schema}"`);
    const runner = direct.createQueryRunner();
    await createClaimTable(runner, schema);
    await runner.release();
    proxy = await new TcpProxy(Number(new URL(TEST_DATABASE_URL).port || 5432)).start();
    const url = new URL(TEST_DATABASE_URL);
    url.port = String(proxy.port);
    proxied = new DataSource({ type: 'postgres', url: url.toString(), extra: { max: 4 } });
    await proxied.initialize();
  });

  afterEach(() => proxy.blackhole(false));

  afterAll(async () => {
    await proxy.stop();
    await proxied.destroy().catch(() => undefined);
    // Sessions a silent connection left behind (their client gone) would hold the schema's locks until they end.
    await direct.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE '%"${schema}"%'`,
    );
    await direct.query(`DROP SCHEMA "${schema}" CASCADE`);
    await direct.destroy();
  });

  it('stops the work once its lease has run out though no renewal ever answers; another consumer then takes the job', async () => {
    const k = key();
    const cut = new ClaimInbox(proxied, { schema, leaseMs: 1500 });
    let silentAt = 0;
    let stoppedAfterMs: number | undefined;
    let stoppedAtWallClock = 0;
    const running = cut.run(k, async (_transaction, lost) => {
      proxy.blackhole(true);
      silentAt = performance.now();
      // A job that would run for a minute; only the lost claim can stop it.
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, 60_000);
        lost!.addEventListener('abort', () => {
          stoppedAfterMs = performance.now() - silentAt;
          stoppedAtWallClock = Date.now();
          clearTimeout(timer);
          reject(new Error('ffmpeg stopped'));
        });
      });
    });
    let outcome: unknown;
    void running.then(
      () => (outcome = 'handled'),
      (error: unknown) => (outcome = error),
    );
    await waitFor('the work to stop once the lease ran out', () => stoppedAfterMs !== undefined, { timeoutMs: 10_000 });
    // A lease counted from the claim's send (just before the silence), less its margin: not from an answer that never came.
    expect(stoppedAfterMs).toBeGreaterThan(900);
    expect(stoppedAfterMs).toBeLessThanOrEqual(1500);
    process.stdout.write(`silent claim connection: work stopped ${Math.round(stoppedAfterMs!)} ms into the silence\n`);
    // Stopped no later than the lease ends in the database: nobody could have taken the job yet.
    const held = await row(k);
    expect(held).toMatchObject({ owner: cut.owner, runs: 1, completed: false });
    expect(held.lease_until.getTime()).toBeGreaterThanOrEqual(stoppedAtWallClock);
    // run() itself ends in bounded time: the release on the silent connection gives up after its timeout.
    await waitFor('run() to end', () => outcome !== undefined, { timeoutMs: 5000 });
    expect(outcome).toBeInstanceOf(ClaimLostError);

    const other = new ClaimInbox(direct, { schema, leaseMs: 30_000 });
    let runs = 0;
    await waitFor(
      'another consumer to take the job over',
      () =>
        other
          .run(k, () => Promise.resolve(void (runs += 1)))
          .catch((error: unknown) => {
            if (error instanceof InboxBusyError) return false;
            throw error;
          }),
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    expect(runs).toBe(1);
    expect(await row(k)).toMatchObject({ owner: other.owner, runs: 2, completed: true });
  });

  it('a claim whose answer was lost after it committed is taken again at once by the same consumer, not waited out', async () => {
    const k = key();
    const mine = new ClaimInbox(proxied, { schema, leaseMs: 30_000, queryTimeoutMs: 1500 });
    // An earlier owner's claim, run out: the claim INSERT will take it over.
    await direct.query(
      `INSERT INTO "${schema}".claims (consumer_group, event_id, event_type, owner, lease_until)
       VALUES ($1, $2, $3, 'dead-host-1-x', now() - interval '1 second')`,
      [k.consumerGroup, k.eventId, k.eventType],
    );
    // Holds the row so the claim INSERT waits in the database: sent, not yet answered.
    const locker = direct.createQueryRunner();
    await locker.startTransaction();
    let ran = 0;
    let first: unknown;
    try {
      await locker.query(`SELECT 1 FROM "${schema}".claims WHERE event_id = $1 FOR UPDATE`, [k.eventId]);
      void mine
        .run(k, () => Promise.resolve(void (ran += 1)))
        .then(
          () => (first = 'handled'),
          (error: unknown) => (first = error),
        );
      await waitFor('the claim INSERT to wait on the row', async () => {
        const [waiting] = await direct.query<{ n: number }[]>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INTO "${schema}".claims%'`,
        );
        return waiting.n === 1;
      });
      // The connection goes silent; the INSERT then commits in the database and its answer is lost on the way.
      proxy.blackhole(true);
      await locker.commitTransaction();
    } finally {
      if (locker.isTransactionActive) await locker.rollbackTransaction();
      await locker.release();
    }
    await waitFor('the INSERT to commit', async () => (await row(k))?.owner === mine.owner);
    await waitFor('the first attempt to end', () => first !== undefined, { timeoutMs: 5000 });
    expect(first).toBeInstanceOf(ClaimStoreTimeoutError);
    expect(ran).toBe(0);
    // What the lost answer left: this consumer's own claim, live for most of a lease.
    expect((await row(k)).lease_until.getTime()).toBeGreaterThan(Date.now() + 20_000);

    proxy.blackhole(false);
    const started = Date.now();
    expect(await mine.run(k, () => Promise.resolve(void (ran += 1)))).toBe('handled');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(ran).toBe(1);
    expect(await row(k)).toMatchObject({ owner: mine.owner, runs: 3, completed: true });
  });
});

/**
 * The whole path with a real broker: a claim-mode worker process is SIGKILLed mid-job. Its partner in the group
 * gets the event after the session timeout, finds the dead worker's lease still live and waits, then runs the job
 * once the lease has expired — twice in all, never at the same time, completed once.
 */
describe('claim-mode consumer: a worker killed mid-job', () => {
  const suffix = randomUUID().slice(0, 8);
  const schema = `claim_worker_${suffix}`;
  const group = `claim-worker-${suffix}`;
  const events = new EmailEvents();
  const db = new Client({ connectionString: TEST_DATABASE_URL });
  const workers: ChildApp[] = [];
  const worker = (name: string, jobMs: number) =>
    new ChildApp('test/fixtures/claim-worker.ts', `${group}-${name}`, {
      CLAIM_SCHEMA: schema,
      CLAIM_GROUP: group,
      WORKER: name,
      LEASE_MS: '15000',
      JOB_MS: String(jobMs),
      CONSUMER_SESSION_TIMEOUT_MS: '6000',
      CONSUMER_HEARTBEAT_INTERVAL_MS: '1000',
    });

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    await startGroupAtEnd(group, 'emails');
    await ensureDatabase(TEST_DATABASE_URL);
    await db.connect();
  });

  afterAll(async () => {
    for (const w of workers) await w.stop('SIGKILL');
    await events.close();
    await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await db.end();
  });

  it('runs the job again after the lease expires, once, and never beside the dead run', async () => {
    const first = worker('first', 600_000);
    workers.push(first);
    await first.start(`consuming as group ${group}`);
    const [job] = await events.publish(1, group);
    const eventId = job.headers.ce_id;
    const runs = async () =>
      (
        await db.query<{ worker: string; started_at: Date; finished_at: Date | null }>(
          `SELECT worker, started_at, finished_at FROM "${schema}".job_runs WHERE event_id = $1 ORDER BY started_at`,
          [eventId],
        )
      ).rows;
    await waitFor('the first worker to start the job', async () => (await runs()).length === 1);

    first.signal('SIGKILL');
    await waitFor('the first worker to die', () => !first.running);
    const [claim] = (
      await db.query<{ owner: string; lease_until: Date }>(
        `SELECT owner, lease_until FROM "${schema}".claims WHERE event_id = $1`,
        [eventId],
      )
    ).rows;
    // The dead worker's lease holds for up to LEASE_MS more: long past the group's session timeout.
    expect(claim.lease_until.getTime()).toBeGreaterThan(Date.now() + 5000);

    const second = worker('second', 500);
    workers.push(second);
    await second.start(`consuming as group ${group}`);
    await waitFor('the second worker to finish the job', async () => (await runs()).some((r) => r.finished_at), {
      timeoutMs: 90_000,
      intervalMs: 250,
    });
    await waitForDrained(group, ['emails', retryTopicOf(group)]);

    const all = await runs();
    expect(all.map((r) => [r.worker, r.finished_at !== null])).toEqual([
      ['first', false],
      ['second', true],
    ]);
    // Not while the dead worker's lease was live: the second run began after it ran out.
    expect(all[1].started_at.getTime()).toBeGreaterThanOrEqual(claim.lease_until.getTime());
    const [after] = (
      await db.query<{ runs: number; completed: boolean }>(
        `SELECT runs, completed_at IS NOT NULL AS completed FROM "${schema}".claims WHERE event_id = $1`,
        [eventId],
      )
    ).rows;
    expect(after).toEqual({ runs: 2, completed: true });
    // It waited on retries without spending attempts: 6 attempts of at most 2 s backoff each would have run out
    // (and dead-lettered the job) well inside the 15 s lease.
    expect(second.printed).not.toMatch(/dead-letter|→ .*\.dlt/);
  });
});
