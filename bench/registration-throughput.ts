/**
 * Registrations per second at saturation: `POST /users` with a fixed number of requests in flight for a fixed time,
 * against argon2id hashes per second alone — the password hash the registration cannot do without — with the same
 * parameters (users-api's own `ARGON2_OPTIONS`) and the same number in flight, in the same process and run. users-api
 * runs with its relay (publishing the two events of each registration as they commit), without the email-service,
 * which registration does not wait for. The two sides take turns in short windows, the outbox drained before each
 * hash window, so both see the same background load and neither has the other's leftovers on the CPU; the process's
 * CPU time per operation is counted too.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import * as argon2 from 'argon2';
import { Client } from 'pg';
import { loadConfig, usersApiConfigSchema } from '@app/config';
import { startApp } from '@app/runtime';
import { usersApiApp } from '../apps/users-api/src/app';
import { SCHEMA } from '../apps/users-api/src/schema';
import { normalizePassword } from '../apps/users-api/src/users/password-policy';
import { ARGON2_OPTIONS } from '../apps/users-api/src/users/users.service';
import { waitFor } from '../test/support/wait';
import { benchEnv, DATABASE_URL } from './env';
import { atLeast, runBench, writeFigure } from './lib/results';
import { distributionChart, summarize } from './lib/stats';

const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 8);
/** Seconds of registrations and of hashes in all, split into `ROUNDS` alternating windows. */
const REGISTRATION_SECONDS = Number(process.env.BENCH_REGISTRATION_SECONDS ?? 20);
const HASH_SECONDS = Number(process.env.BENCH_HASH_SECONDS ?? 10);
const ROUNDS = 4;
const REQUEST_TIMEOUT_MS = 15_000;
const PASSWORD = 'correct horse battery staple';
/** Node's default: argon2 runs on libuv's thread pool, which the app and the bench share (one process). */
const THREAD_POOL = Number(process.env.UV_THREADPOOL_SIZE ?? 4);

interface Run {
  /** From the first start to the last completion. */
  seconds: number;
  latencies: number[];
}

/**
 * `concurrency` workers each start `task` again as soon as theirs completes, until `seconds` have passed; the run
 * ends when the last task started completes. Each task is bounded by its own timeout.
 */
async function saturate(seconds: number, concurrency: number, task: () => Promise<void>): Promise<Run> {
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  async function worker(): Promise<void> {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await task();
      latencies.push(performance.now() - t0);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { seconds: (performance.now() - started) / 1000, latencies };
}

const join = (a: Run, b: Run): Run => ({ seconds: a.seconds + b.seconds, latencies: [...a.latencies, ...b.latencies] });
const rate = (run: Run) => run.latencies.length / run.seconds;

async function register(url: string): Promise<void> {
  const name = `tp-${randomUUID().slice(0, 12)}`;
  const response = await fetch(`${url}/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `${name}@example.com`, username: name, password: PASSWORD }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  await response.arrayBuffer();
  if (response.status !== 201) throw new Error(`POST /users answered ${response.status}`);
}

/** What users-api hashes: the normalised password, with its own parameters. */
async function hash(): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      argon2.hash(normalizePassword(PASSWORD), ARGON2_OPTIONS),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('argon2 hash timed out')), REQUEST_TIMEOUT_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const pendingRows = async (db: Client): Promise<number> =>
  (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${SCHEMA}".outbox WHERE published_at IS NULL`))
    .rows[0].n;

/** CPU time this process spent, in ms: on its main thread (the app's JavaScript and the bench's client) and in all. */
function cpu(): { main: number; all: number } {
  const main = process.threadCpuUsage();
  const all = process.cpuUsage();
  return { main: (main.user + main.system) / 1000, all: (all.user + all.system) / 1000 };
}

/** Runs `measure` and adds its CPU time (main thread and other threads, ms) to `into`. */
async function accounted(into: { main: number; other: number }, measure: () => Promise<Run>): Promise<Run> {
  const before = cpu();
  const run = await measure();
  const after = cpu();
  into.main += after.main - before.main;
  into.other += after.all - after.main - (before.all - before.main);
  return run;
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const api = await startApp(usersApiApp, loadConfig('users-api', usersApiConfigSchema, benchEnv({})));
  const db = new Client({ connectionString: DATABASE_URL });
  await db.connect();
  try {
    // Warm-up: connections, JIT, the relay's producer.
    await saturate(1, IN_FLIGHT, () => register(api.url));
    await saturate(1, IN_FLIGHT, hash);
    // Short alternating windows, so that both sides share whatever else the machine is doing.
    let registrations: Run = { seconds: 0, latencies: [] };
    let hashes: Run = { seconds: 0, latencies: [] };
    const registrationCpu = { main: 0, other: 0 };
    const hashCpu = { main: 0, other: 0 };
    let pendingAtEnd = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // The relay keeps up, or catches up here: its backlog does not run during a hash window.
      await waitFor('the outbox to drain', async () => (await pendingRows(db)) === 0, { timeoutMs: 10_000 });
      hashes = join(hashes, await accounted(hashCpu, () => saturate(HASH_SECONDS / ROUNDS, IN_FLIGHT, hash)));
      registrations = join(
        registrations,
        await accounted(registrationCpu, () =>
          saturate(REGISTRATION_SECONDS / ROUNDS, IN_FLIGHT, () => register(api.url)),
        ),
      );
      pendingAtEnd = Math.max(pendingAtEnd, await pendingRows(db));
    }

    const reg = summarize(registrations.latencies);
    const hs = summarize(hashes.latencies);
    const perRegistration = (ms: number) => ms / reg.n;
    const perHash = (ms: number) => ms / hs.n;
    const chart = distributionChart(
      'latency',
      `Latency with ${IN_FLIGHT} in flight`,
      [
        ['POST /users', registrations.latencies],
        ['argon2id hash alone', hashes.latencies],
      ],
      { x: 'latency (ms)', y: 'share of requests' },
    );
    const { memoryCost, timeCost, parallelism } = ARGON2_OPTIONS;
    writeFigure(
      {
        id: 'registration-throughput',
        figure: 8,
        title: 'Registration throughput at saturation',
        measurements: [
          { label: 'in flight (both sides)', value: IN_FLIGHT, unit: 'requests' },
          { label: 'registrations (201)', value: reg.n, unit: 'requests' },
          { label: 'registrations per second', value: rate(registrations), unit: '/s' },
          { label: 'POST /users p50', value: reg.p50, unit: 'ms' },
          { label: 'POST /users p99', value: reg.p99, unit: 'ms' },
          { label: 'most outbox rows pending at the end of a window', value: pendingAtEnd, unit: 'rows' },
          {
            label: `argon2id hashes (m=${memoryCost} KiB, t=${timeCost}, p=${parallelism})`,
            value: hs.n,
            unit: 'hashes',
          },
          { label: 'hashes per second', value: rate(hashes), unit: '/s' },
          { label: 'argon2id hash p50', value: hs.p50, unit: 'ms' },
          { label: 'argon2id hash p99', value: hs.p99, unit: 'ms' },
          { label: "libuv thread pool (argon2's threads, shared)", value: THREAD_POOL, unit: 'threads' },
          {
            label: 'process CPU per registration, main thread (app, relay, bench client)',
            value: perRegistration(registrationCpu.main),
            unit: 'ms',
          },
          {
            label: 'process CPU per registration, other threads (argon2, GC)',
            value: perRegistration(registrationCpu.other),
            unit: 'ms',
          },
          { label: 'process CPU per hash, main thread', value: perHash(hashCpu.main), unit: 'ms' },
          { label: 'process CPU per hash, other threads (argon2, GC)', value: perHash(hashCpu.other), unit: 'ms' },
          {
            label: "this process's CPU per hash ÷ per registration",
            value:
              perHash(hashCpu.main + hashCpu.other) / perRegistration(registrationCpu.main + registrationCpu.other),
            unit: '×',
          },
        ],
        ratios: [atLeast('registrations/s ÷ argon2id hashes/s', rate(registrations) / rate(hashes), 0.8)],
        notes: [
          `${REGISTRATION_SECONDS} s of POST /users and ${HASH_SECONDS} s of argon2id hashes alone in ${ROUNDS} ` +
            `alternating windows, ${IN_FLIGHT} in flight each, in one process: users-api (started in-process, its ` +
            `relay publishing, no email-service) hashes on the same libuv pool of ${THREAD_POOL} threads as the raw ` +
            `hashes, so at most ${THREAD_POOL} hashes run at once on either side and the rest queue.`,
          'Both sides are CPU-bound on 2 cores shared with PostgreSQL, the broker and whatever else runs, so both ' +
            'rates move from run to run; the CPU per operation (this process only: PostgreSQL and the broker are ' +
            'not counted) moves less and shows what a registration costs beyond its hash.',
        ],
        charts: [chart],
      },
      startedAt,
    );
  } finally {
    await db.end();
    await api.app.close();
  }
}

runBench(main);
