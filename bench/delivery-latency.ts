/**
 * 201 → SMTP accepted: how long after `POST /users` answered the SMTP server accepted the welcome email, on an idle
 * system (one registration at a time, the SMTP server answering at once). Each sample is split into stages from the
 * database's own timestamps: the relay (commit → marked published after the broker's ack), the consumer (→ inbox
 * transaction began) and the send (→ SMTP server accepted). Figure 2; run with `npm run bench -- delivery-latency`.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { emailServiceConfigSchema, loadConfig, usersApiConfigSchema } from '@app/config';
import { startApp } from '@app/runtime';
import { emailServiceApp } from '../apps/email-service/src/app';
import { usersApiApp } from '../apps/users-api/src/app';
import { startGroupAtEnd } from '../test/support/kafka';
import { benchEnv, DATABASE_URL } from './env';
import { atMostOf, runBench, writeFigure } from './lib/results';
import { SmtpCatcher } from '../test/support/smtp';
import { distributionChart, summarize } from './lib/stats';

const N = Number(process.env.BENCH_DELIVERIES ?? 100);

const env = benchEnv;

async function until(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const smtp = await new SmtpCatcher({ parse: false }).start();
  const acceptedAt = (to: string) => smtp.accepted.find((a) => a.to === to)?.epochMs;
  const api = await startApp(usersApiApp, loadConfig('users-api', usersApiConfigSchema, env({})));
  const group = `bench-delivery-${randomUUID().slice(0, 8)}`;
  await startGroupAtEnd(group, 'emails');
  const email = await startApp(
    emailServiceApp,
    loadConfig('email-service', emailServiceConfigSchema, env({ SMTP_URL: smtp.url, EMAIL_CONSUMER_GROUP: group })),
  );
  const db = new Client({ connectionString: DATABASE_URL });
  await db.connect();
  const url = api.url;
  const samples: { total: number; relay: number; consume: number; send: number }[] = [];
  try {
    for (let i = -5; i < N; i++) {
      const name = `delivery-${randomUUID().slice(0, 12)}`;
      const address = `${name}@example.com`;
      const response = await fetch(`${url}/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: address, username: name, password: 'correct horse battery staple' }),
      });
      const answeredAt = Date.now();
      if (response.status !== 201) throw new Error(`POST /users answered ${response.status}`);
      const { id } = (await response.json()) as { id: string };
      await until(`the email to ${address}`, () => acceptedAt(address) !== undefined);
      if (i < 0) continue; // warm-up
      // The inbox row commits just after the SMTP server accepted, and the relay marks the row published after the
      // broker's ack, which can come after the email went out: wait for both.
      let rows: { committed: Date; published: Date | null; handled: Date }[] = [];
      for (let tries = 0; rows.length === 0 || rows[0].published === null; tries++) {
        if (tries > 200) throw new Error(`no inbox row for user ${id}`);
        if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 10));
        ({ rows } = await db.query<{ committed: Date; published: Date | null; handled: Date }>(
          `SELECT o.created_at AS committed, o.published_at AS published, i.processed_at AS handled
             FROM users_api.outbox o JOIN email_service.inbox i ON i.event_id = o.event_id AND i.consumer_group = $2
            WHERE o.message_key = $1 AND o.event_type = 'email.requested.v1'`,
          [id, group],
        ));
      }
      const accepted = acceptedAt(address) as number;
      const { committed, handled } = rows[0];
      const published = rows[0].published;
      samples.push({
        total: accepted - answeredAt,
        relay: published.getTime() - committed.getTime(),
        consume: handled.getTime() - published.getTime(),
        send: accepted - handled.getTime(),
      });
    }
  } finally {
    await db.end();
    await email.app.close();
    await api.app.close();
    await smtp.stop();
  }
  const stages: [string, (s: (typeof samples)[number]) => number][] = [
    ['201 answered → SMTP server accepted', (s) => s.total],
    ['outbox commit → published (relay, ack)', (s) => s.relay],
    ['published → inbox transaction (consumer)', (s) => s.consume],
    ['inbox transaction → accepted (render, SMTP)', (s) => s.send],
  ];
  const total = summarize(samples.map((s) => s.total));
  writeFigure(
    {
      id: 'delivery-latency',
      figure: 2,
      title: '201 → SMTP accepted, idle system',
      measurements: stages.flatMap(([label, pick]) => {
        const s = summarize(samples.map(pick));
        return [
          { label: `${label}: p50`, value: s.p50, unit: 'ms' },
          { label: `${label}: p99`, value: s.p99, unit: 'ms' },
        ];
      }),
      ratios: [
        atMostOf('201 → SMTP accepted, p50', total.p50, 30, 'ms'),
        atMostOf('201 → SMTP accepted, p99', total.p99, 60, 'ms'),
      ],
      notes: [
        `${N} registrations one at a time, an SMTP server answering at once. The stages come from the database's own ` +
          "timestamps: the relay stage counts from the registration transaction's start and ends when the relay " +
          "marked the row after the broker's ack, so the stages overlap the total a little. The relay wakes on the " +
          "commit's NOTIFY and the consumer waits on a fetch: one slow fetch round or a garbage collection sets the p99.",
      ],
      charts: [
        distributionChart(
          'stages',
          '201 → SMTP accepted, by stage (distribution)',
          stages.map(([label, pick]) => [label, samples.map(pick)]),
          { x: 'milliseconds', y: 'share of registrations at or below' },
        ),
      ],
    },
    startedAt,
  );
}

runBench(main);
