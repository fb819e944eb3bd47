/**
 * Figure 1, the request path beyond the hash: `POST /users` latency side by side in one run — with an SMTP server
 * answering at once, with one taking 2 s per message, with Kafka unreachable, and the synchronous design (hash,
 * insert, send the email in the request) against the same 2 s SMTP server — and an argon2id hash alone with the
 * users-api's own parameters, timed between the requests of the first round so both see the same machine.
 * Overhead beyond the hash = registration p50 − hash p50. Run with `npm run bench -- request-path`.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import * as argon2 from 'argon2';
import { createTransport } from 'nodemailer';
import { Client } from 'pg';
import { emailServiceConfigSchema, loadConfig, usersApiConfigSchema } from '@app/config';
import { startApp } from '@app/runtime';
import { emailServiceApp } from '../apps/email-service/src/app';
import { usersApiApp } from '../apps/users-api/src/app';
import { ARGON2_OPTIONS } from '../apps/users-api/src/users/users.service';
import { startGroupAtEnd } from '../test/support/kafka';
import { benchEnv, DATABASE_URL } from './env';
import { atMost, atMostOf, Measurement, runBench, writeFigure } from './lib/results';
import { SmtpCatcher } from '../test/support/smtp';
import { distributionChart, summarize } from './lib/stats';

const N = Number(process.env.BENCH_REQUESTS ?? 200);
const SYNC_N = Number(process.env.BENCH_SYNC_REQUESTS ?? 10);
const SMTP_DELAY_MS = 2000;
const PASSWORD = 'correct horse battery staple';

async function register(url: string): Promise<number> {
  const name = `bench-${randomUUID().slice(0, 12)}`;
  const started = performance.now();
  const response = await fetch(`${url}/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `${name}@example.com`, username: name, password: PASSWORD }),
  });
  const elapsed = performance.now() - started;
  if (response.status !== 201) throw new Error(`POST /users answered ${response.status}: ${await response.text()}`);
  return elapsed;
}

async function hashOnce(): Promise<number> {
  const started = performance.now();
  await argon2.hash(PASSWORD, ARGON2_OPTIONS);
  return performance.now() - started;
}

/**
 * One round of sequential registrations against users-api (and an email-service on `smtpUrl` when given, in a
 * group of its own that starts at the end of `emails`). With `hashes`, a hash alone is timed after each request.
 */
async function asyncRound(
  overrides: Record<string, string>,
  smtpUrl: string | undefined,
  hashes?: number[],
): Promise<number[]> {
  const api = await startApp(usersApiApp, loadConfig('users-api', usersApiConfigSchema, benchEnv(overrides)));
  let email: Awaited<ReturnType<typeof startApp>> | undefined;
  if (smtpUrl) {
    const group = `bench-request-${randomUUID().slice(0, 8)}`;
    await startGroupAtEnd(group, 'emails');
    email = await startApp(
      emailServiceApp,
      loadConfig(
        'email-service',
        emailServiceConfigSchema,
        benchEnv({ SMTP_URL: smtpUrl, EMAIL_CONSUMER_GROUP: group }),
      ),
    );
  }
  try {
    for (let i = 0; i < 5; i++) await register(api.url); // warm-up
    const samples: number[] = [];
    for (let i = 0; i < N; i++) {
      samples.push(await register(api.url));
      if (hashes) hashes.push(await hashOnce());
    }
    return samples;
  } finally {
    await email?.app.close();
    await api.app.close();
  }
}

/** The synchronous design the system replaces: the request waits for the SMTP server. */
async function syncRound(smtpUrl: string): Promise<number[]> {
  const db = new Client({ connectionString: DATABASE_URL });
  await db.connect();
  await db.query('CREATE TABLE IF NOT EXISTS bench_sync_users (id uuid PRIMARY KEY, email text UNIQUE, hash text)');
  const mailer = createTransport(smtpUrl);
  const samples: number[] = [];
  try {
    for (let i = 0; i < SYNC_N; i++) {
      const email = `sync-${randomUUID()}@example.com`;
      const started = performance.now();
      const hash = await argon2.hash(PASSWORD, ARGON2_OPTIONS);
      await db.query('INSERT INTO bench_sync_users VALUES ($1, $2, $3)', [randomUUID(), email, hash]);
      await mailer.sendMail({ from: 'bench@example.com', to: email, subject: 'Welcome', text: 'Welcome!' });
      samples.push(performance.now() - started);
    }
  } finally {
    mailer.close();
    await db.end();
  }
  return samples;
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const fast = await new SmtpCatcher({ parse: false }).start();
  const slow = await new SmtpCatcher({ delayMs: SMTP_DELAY_MS, parse: false }).start();
  const hashes: number[] = [];
  let instant: number[], delayed: number[], noKafka: number[], sync: number[];
  try {
    instant = await asyncRound({}, fast.url, hashes);
    delayed = await asyncRound({}, slow.url);
    // Nothing listens on port 1: the relay fails and backs off while requests keep coming.
    noKafka = await asyncRound({ KAFKA_BROKERS: '127.0.0.1:1', KAFKA_CONNECT_TIMEOUT_MS: '1000' }, undefined);
    sync = await syncRound(slow.url);
  } finally {
    await fast.stop();
    await slow.stop();
  }
  const rounds: [string, number[]][] = [
    ['argon2id hash alone', hashes],
    ['POST /users, SMTP answering at once', instant],
    [`POST /users, SMTP taking ${SMTP_DELAY_MS} ms`, delayed],
    ['POST /users, Kafka unreachable', noKafka],
    [`synchronous design, SMTP taking ${SMTP_DELAY_MS} ms`, sync],
  ];
  const measurements: Measurement[] = [];
  for (const [label, samples] of rounds) {
    const s = summarize(samples);
    measurements.push(
      { label: `${label}: p50 (n = ${s.n})`, value: s.p50, unit: 'ms' },
      { label: `${label}: p99`, value: s.p99, unit: 'ms' },
    );
  }
  const hash = summarize(hashes);
  const healthy = summarize(instant);
  const slowSmtp = summarize(delayed);
  measurements.push({
    label: 'overhead beyond the hash, p50 (registration − hash)',
    value: healthy.p50 - hash.p50,
    unit: 'ms',
  });
  writeFigure(
    {
      id: 'request-path',
      figure: 1,
      title: 'Request path beyond the hash',
      measurements,
      ratios: [
        atMostOf('POST /users p50 − argon2id hash p50', healthy.p50 - hash.p50, 5, 'ms'),
        atMost(`POST /users p99, SMTP taking ${SMTP_DELAY_MS} ms ÷ SMTP at once`, slowSmtp.p99 / healthy.p99, 1.1),
      ],
      notes: [
        `Sequential requests (${N} a round, ${SYNC_N} for the synchronous design) against users-api and email-service ` +
          'in one process on the same 2 cores as the broker and PostgreSQL; the hash alone is timed right after each ' +
          'request of the first round. The response is the hash plus one transaction whatever SMTP or Kafka do; the ' +
          'synchronous design pays the mail server on every request. p99 of a few hundred samples moves with ' +
          'whatever else the machine does (a garbage collection, a checkpoint), so the p99 ratio is the noisy one.',
      ],
      charts: [
        distributionChart('latency', 'POST /users latency distribution (log scale)', rounds, {
          x: 'latency (ms)',
          y: 'share of requests at or below',
          logScale: true,
        }),
      ],
    },
    startedAt,
  );
}

runBench(main);
