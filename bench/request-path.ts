/**
 * POST /users latency, side by side in one run: healthy; SMTP taking 2 s per message; Kafka unreachable; and the
 * synchronous design (hash + insert + send the email in the request) against the same 2 s SMTP server.
 * Run with `npm run bench`; it prints p50/p95/max and the ratio of each p50 to the healthy one.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { AddressInfo } from 'node:net';
import * as argon2 from 'argon2';
import { createTransport } from 'nodemailer';
import { Client } from 'pg';
import { SMTPServer } from 'smtp-server';
import { emailServiceConfigSchema, loadConfig, usersApiConfigSchema } from '@app/config';
import { startApp } from '@app/runtime';
import { emailServiceApp } from '../apps/email-service/src/app';
import { usersApiApp } from '../apps/users-api/src/app';
import { benchEnv, DATABASE_URL } from './env';

const N = Number(process.env.BENCH_REQUESTS ?? 40);
const SYNC_N = Number(process.env.BENCH_SYNC_REQUESTS ?? 5);
const SMTP_DELAY_MS = 2000;

async function smtpServer(delayMs: number): Promise<{ url: string; close: () => Promise<void> }> {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData: (stream, _session, callback) => {
      stream.resume();
      stream.on('end', () => setTimeout(() => callback(), delayMs));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return { url: `smtp://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const env = benchEnv;

function stats(samples: number[]): { p50: number; p95: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1] };
}

async function registerMany(url: string, count: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const name = `bench-${randomUUID().slice(0, 12)}`;
    const started = performance.now();
    const response = await fetch(`${url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `${name}@example.com`, username: name, password: 'correct horse battery staple' }),
    });
    samples.push(performance.now() - started);
    if (response.status !== 201) throw new Error(`POST /users answered ${response.status}`);
  }
  return samples;
}

async function asyncScenario(overrides: Record<string, string>, smtpUrl?: string): Promise<number[]> {
  const api = await startApp(usersApiApp, loadConfig('users-api', usersApiConfigSchema, env(overrides)));
  const email = smtpUrl
    ? await startApp(
        emailServiceApp,
        loadConfig(
          'email-service',
          emailServiceConfigSchema,
          env({ SMTP_URL: smtpUrl, EMAIL_CONSUMER_GROUP: 'bench' }),
        ),
      )
    : undefined;
  try {
    const url = api.url;
    await registerMany(url, 3); // warm-up
    return await registerMany(url, N);
  } finally {
    await email?.app.close();
    await api.app.close();
  }
}

/** The synchronous design the system replaces: the request waits for the SMTP server. */
async function syncScenario(smtpUrl: string): Promise<number[]> {
  const db = new Client({ connectionString: DATABASE_URL });
  await db.connect();
  await db.query('CREATE TABLE IF NOT EXISTS bench_sync_users (id uuid PRIMARY KEY, email text UNIQUE, hash text)');
  const mailer = createTransport(smtpUrl);
  const samples: number[] = [];
  try {
    for (let i = 0; i < SYNC_N; i++) {
      const email = `sync-${randomUUID()}@example.com`;
      const started = performance.now();
      const hash = await argon2.hash('correct horse battery staple', {
        type: argon2.argon2id,
        memoryCost: 19 * 1024,
        timeCost: 2,
        parallelism: 1,
      });
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
  const fast = await smtpServer(0);
  const slow = await smtpServer(SMTP_DELAY_MS);
  const results: [string, number[]][] = [];
  try {
    results.push(['async, all healthy', await asyncScenario({}, fast.url)]);
    results.push([`async, SMTP takes ${SMTP_DELAY_MS} ms`, await asyncScenario({}, slow.url)]);
    // Nothing listens on port 1: the relay fails and backs off while requests keep coming.
    results.push([
      'async, Kafka unreachable',
      await asyncScenario({ KAFKA_BROKERS: '127.0.0.1:1', KAFKA_CONNECT_TIMEOUT_MS: '1000' }),
    ]);
    results.push([`sync, SMTP takes ${SMTP_DELAY_MS} ms`, await syncScenario(slow.url)]);
  } finally {
    await fast.close();
    await slow.close();
  }
  const base = stats(results[0][1]).p50;
  process.stdout.write(`\nPOST /users latency (${N} sequential requests each; sync: ${SYNC_N})\n`);
  process.stdout.write(
    `${'scenario'.padEnd(32)} ${'n'.padStart(4)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)} ${'max ms'.padStart(8)}  p50 ratio\n`,
  );
  for (const [name, samples] of results) {
    const s = stats(samples);
    process.stdout.write(
      `${name.padEnd(32)} ${String(samples.length).padStart(4)} ${s.p50.toFixed(1).padStart(8)} ${s.p95.toFixed(1).padStart(8)} ${s.max.toFixed(1).padStart(8)}  ${(s.p50 / base).toFixed(2)}×\n`,
    );
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
