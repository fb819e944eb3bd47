import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { ensureDatabase } from '@app/database';
import { Client } from 'pg';
import { ALL_TOPICS } from '@app/contracts';
import { ensureTopics, InboxKey, retryTopicOf } from '@app/messaging';
import { ClaimInbox, ClaimLostError, createClaimTable, InboxBusyError } from '@app/inbox';
import { testKafka } from './support/broker';
import { ChildApp } from './support/child-app';
import { TEST_DATABASE_URL } from './support/env';
import { EmailEvents, startGroupAtEnd, waitForDrained } from './support/kafka';
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
