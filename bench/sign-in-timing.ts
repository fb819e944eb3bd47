/**
 * Figure 9, sign-in timing: does the answer's time tell whether an account exists? `POST /sessions` with an unknown
 * email, with a known email and a wrong password, and with the right password, interleaved in one run against one
 * users-api (as production runs it: argon2id with the app's parameters, the failure counting in PostgreSQL). An
 * unknown email verifies a dummy hash, so its time should be a wrong password's. Run with
 * `npm run bench -- sign-in-timing`.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { loadConfig, usersApiConfigSchema } from '@app/config';
import { startApp } from '@app/runtime';
import { usersApiApp } from '../apps/users-api/src/app';
import { benchEnv } from './env';
import { atMost, Measurement, runBench, writeFigure } from './lib/results';
import { distributionChart, summarize } from './lib/stats';

const N = Number(process.env.BENCH_REQUESTS ?? 150);
const PASSWORD = 'correct horse battery staple';

async function signIn(url: string, email: string, password: string, expected: number): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${url}/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  const elapsed = performance.now() - started;
  await response.arrayBuffer();
  if (response.status !== expected) throw new Error(`POST /sessions answered ${response.status}, not ${expected}`);
  return elapsed;
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  // Throttling would answer 429 long before N failures: this measures the answer itself.
  const api = await startApp(
    usersApiApp,
    loadConfig(
      'users-api',
      usersApiConfigSchema,
      benchEnv({ AUTH_SIGN_IN_MAX_FAILURES: '1000', AUTH_SIGN_IN_MAX_CLIENT_FAILURES: '100000' }),
    ),
  );
  const samples = { unknown: [] as number[], wrong: [] as number[], right: [] as number[] };
  try {
    const name = `bench-${randomUUID().slice(0, 12)}`;
    const email = `${name}@example.com`;
    const registered = await fetch(`${api.url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, username: name, password: PASSWORD }),
    });
    if (registered.status !== 201) throw new Error(`POST /users answered ${registered.status}`);
    const unknown = () => signIn(api.url, `nobody-${randomUUID().slice(0, 8)}@example.com`, PASSWORD, 401);
    const wrong = () => signIn(api.url, email, 'not the password at all', 401);
    const right = () => signIn(api.url, email, PASSWORD, 201);
    for (let i = 0; i < 5; i++) await Promise.all([unknown(), wrong(), right()].map((p) => p.catch(() => 0)));
    // Interleaved, in a rotating order, so that each kind sees the same machine.
    const kinds = [
      ['unknown', unknown],
      ['wrong', wrong],
      ['right', right],
    ] as const;
    for (let i = 0; i < N; i++) {
      for (let k = 0; k < kinds.length; k++) {
        const [kind, run] = kinds[(i + k) % kinds.length];
        samples[kind].push(await run());
      }
    }
  } finally {
    await api.app.close();
  }
  const unknown = summarize(samples.unknown);
  const wrong = summarize(samples.wrong);
  const right = summarize(samples.right);
  const rounds: [string, number[]][] = [
    ['unknown email', samples.unknown],
    ['known email, wrong password', samples.wrong],
    ['right password', samples.right],
  ];
  const measurements: Measurement[] = rounds.flatMap(([label, values]) => {
    const s = summarize(values);
    return [
      { label: `${label}: p50 (n = ${s.n})`, value: s.p50, unit: 'ms' },
      { label: `${label}: p90`, value: s.p90, unit: 'ms' },
    ];
  });
  measurements.push({ label: 'unknown − wrong password, p50', value: unknown.p50 - wrong.p50, unit: 'ms' });
  const ratio = unknown.p50 / wrong.p50;
  writeFigure(
    {
      id: 'sign-in-timing',
      figure: 9,
      title: 'Sign-in timing: an unknown email against a wrong password',
      measurements,
      ratios: [
        atMost('unknown email p50 ÷ wrong password p50, or its inverse (the larger)', Math.max(ratio, 1 / ratio), 1.1),
      ],
      notes: [
        `${N} sign-ins of each kind, sequential and interleaved in a rotating order, against one users-api on the ` +
          'same 2 cores as PostgreSQL and the broker. Both failures verify one argon2id hash (the account’s or a dummy ' +
          'made at boot) and count the failure; the right password also issues a refresh token and signs an access ' +
          `token (its p50: ${right.p50.toFixed(0)} ms). A difference within the p50s’ noise tells an attacker nothing.`,
      ],
      charts: [
        distributionChart('latency', 'POST /sessions latency distribution', rounds, {
          x: 'latency (ms)',
          y: 'share of requests at or below',
        }),
      ],
    },
    startedAt,
  );
}

runBench(main);
