/**
 * Load leveling: the topic between users-api and email-service flattens a peak. The same registration burst (an
 * open-loop schedule of BENCH_BURST_RATE requests/s for BENCH_BURST_SECONDS s) runs twice against one users-api,
 * first with an SMTP server that accepts at once, then with one that accepts one message at a time and takes
 * BENCH_SMTP_MS ms each (about a tenth of the burst's rate). Each round has an email-service of its own, in a fresh
 * consumer group started at the end of `emails`, with CONSUMER_CONCURRENCY=1.
 *
 * Measured: POST /users latency of both rounds (from each request's scheduled start, so a request held back by the
 * in-flight bound counts its wait), their p99 ratio, and for the slow round a time series every SAMPLE_MS ms over
 * burst and drain — registrations answered/s, emails accepted by the SMTP server/s and the email backlog (events the
 * relay marked published with no inbox row of the round's group yet, read from the database) — with the peak
 * backlog, the rate at which it drains after the burst, and totals: every registration emailed once, no more.
 * A round whose schedule slipped (the machine could not offer the burst) is flagged in the notes; the instant
 * round, which takes seconds, is then run once more.
 * Run with `npm run bench -- load-leveling`.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { emailServiceConfigSchema, loadConfig, usersApiConfigSchema } from '@app/config';
import { ALL_TOPICS } from '@app/contracts';
import { ensureTopics, type Kafka } from '@app/messaging';
import { RunningApp, startApp } from '@app/runtime';
import { emailServiceApp } from '../apps/email-service/src/app';
import { usersApiApp } from '../apps/users-api/src/app';
import { testKafka } from '../test/support/broker';
import { groupDrained, startGroupAtEnd } from '../test/support/kafka';
import { waitFor } from '../test/support/wait';
import { benchEnv, DATABASE_URL, KAFKA_BROKERS } from './env';
import { atLeast, atMost, Chart, runBench, writeFigure } from './lib/results';
import { AcceptedMail, SmtpCatcher } from '../test/support/smtp';
import { distributionChart, inFlight, summarize } from './lib/stats';

const RATE = Number(process.env.BENCH_BURST_RATE ?? 20);
const BURST_SECONDS = Number(process.env.BENCH_BURST_SECONDS ?? 8);
const COUNT = Math.round(RATE * BURST_SECONDS);
/** The slow SMTP server takes this long per message and handles one message at a time. */
const SMTP_MS = Number(process.env.BENCH_SMTP_MS ?? 500);
/** Messages per second the slow SMTP server can accept: one at a time, SMTP_MS each. */
const CAPACITY = 1000 / SMTP_MS;
/** Requests open at once at most; a request due while this many are open starts when one answers. */
const MAX_IN_FLIGHT = 64;
const SAMPLE_MS = 500;
const WARM_UP = 10;
/** A request that started this much after its scheduled time counts as late (the schedule slipped). */
const LATE_MS = 50;
/**
 * A round whose schedule slipped this much (share of its requests late) did not offer the burst: the API could not
 * keep up, its latency measures a saturated machine. The instant round, short, is then run once more.
 */
const SLIPPED_SHARE = 0.05;

const BACKLOG = 'backlog (events)';
const REGISTRATIONS = 'registrations/s';
const EMAILS = 'emails/s';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Answer {
  address: string;
  status: number;
  /** performance.now() when the answer came. */
  at: number;
  /** From the request's scheduled start to its answer. */
  ms: number;
}

async function register(apiUrl: string, address: string): Promise<number> {
  const username = address.split('@')[0];
  try {
    const response = await fetch(`${apiUrl}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: address, username, password: 'correct horse battery staple' }),
    });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}

/**
 * The burst: request i is due at t0 + i / RATE and starts then whether or not earlier ones answered (open loop),
 * unless MAX_IN_FLIGHT are open, when it starts as soon as one answers.
 */
async function burst(apiUrl: string, tag: string, t0: number): Promise<{ answers: Answer[]; late: number }> {
  const answers: Answer[] = [];
  const slots: (() => void)[] = [];
  const pending: Promise<void>[] = [];
  let open = 0;
  let late = 0;
  for (let i = 0; i < COUNT; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    while (open >= MAX_IN_FLIGHT) await new Promise<void>((resolve) => slots.push(resolve));
    if (performance.now() - due > LATE_MS) late++;
    open++;
    const address = `${tag}-${i}@example.com`;
    pending.push(
      register(apiUrl, address).then((status) => {
        const at = performance.now();
        answers.push({ address, status, at, ms: at - due });
        open--;
        slots.shift()?.();
      }),
    );
  }
  await Promise.all(pending);
  return { answers, late };
}

interface Sample {
  at: number;
  backlog: number;
}

/**
 * The email backlog from the database: email.requested.v1 rows written since `since` that the relay marked
 * published and that have no inbox row of `group` yet (the inbox row commits once the SMTP server accepted).
 */
async function backlogOf(db: Client, group: string, since: Date): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n
       FROM users_api.outbox o
      WHERE o.event_type = 'email.requested.v1' AND o.created_at >= $2 AND o.published_at IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM email_service.inbox i WHERE i.consumer_group = $1 AND i.event_id = o.event_id)`,
    [group, since],
  );
  return rows[0].n;
}

/** Samples the backlog every SAMPLE_MS ms, on a fixed grid from `t0`, until stopped. */
function sampler(db: Client, group: string, since: Date, t0: number): { samples: Sample[]; stop: () => Promise<void> } {
  const samples: Sample[] = [];
  let stopping = false;
  const loop = (async () => {
    for (let tick = 0; ; tick++) {
      const wait = t0 + tick * SAMPLE_MS - performance.now();
      if (wait > 0) await sleep(wait);
      const at = performance.now();
      samples.push({ at, backlog: await backlogOf(db, group, since) });
      if (stopping) return;
    }
  })();
  // A failed query surfaces from stop(); until then it must not end the process as an unhandled rejection.
  loop.catch(() => undefined);
  return {
    samples,
    stop: async () => {
      stopping = true;
      await loop;
    },
  };
}

interface Round {
  name: string;
  group: string;
  t0: number;
  answers: Answer[];
  late: number;
  smtp: AcceptedMail[];
  samples: Sample[];
  registered: number;
  emails: number;
  duplicates: number;
  lost: number;
  retried: number;
  deadLettered: number;
}

async function round(
  name: string,
  apiUrl: string,
  db: Client,
  kafka: Kafka,
  delayMs: number,
  drainTimeoutMs: number,
): Promise<Round> {
  const smtp = await new SmtpCatcher({ delayMs, oneAtATime: true, parse: false }).start();
  const group = `bench-leveling-${name}-${randomUUID().slice(0, 8)}`;
  await startGroupAtEnd(group, 'emails');
  let email: RunningApp | undefined;
  let sampling: ReturnType<typeof sampler> | undefined;
  try {
    email = await startApp(
      emailServiceApp,
      loadConfig(
        'email-service',
        emailServiceConfigSchema,
        benchEnv({ SMTP_URL: smtp.url, EMAIL_CONSUMER_GROUP: group, CONSUMER_CONCURRENCY: '1' }),
      ),
    );
    const server = email.server;
    await waitFor(
      `email-service (${group}) to join its group`,
      () => {
        const { membership } = server.consumerStatus();
        return membership.state === 'joined' && (membership.assigned.emails?.length ?? 0) > 0;
      },
      { timeoutMs: 60_000 },
    );

    const since = (await db.query<{ now: Date }>('SELECT now() AS now')).rows[0].now;
    const t0 = performance.now() + 200;
    sampling = sampler(db, group, since, t0);
    const tag = `leveling-${name}-${randomUUID().slice(0, 8)}`;
    const { answers, late } = await burst(apiUrl, tag, t0);
    const registered = new Set(answers.filter((a) => a.status === 201).map((a) => a.address));
    const mine = () => smtp.accepted.filter((m) => m.to.startsWith(`${tag}-`));
    await waitFor(
      `${registered.size} welcome emails (${name} SMTP)`,
      () => new Set(mine().map((m) => m.to)).size >= registered.size,
      { timeoutMs: drainTimeoutMs, intervalMs: 100 },
    );
    await waitFor(`${registered.size} inbox rows of ${group}`, async () => {
      const { rows } = await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM email_service.inbox WHERE consumer_group = $1',
        [group],
      );
      return rows[0].n >= registered.size;
    });
    // Every offset committed: nothing of the round is left to be delivered again.
    await waitFor(`${group} to commit to the end of emails`, () => groupDrained(kafka, group, ['emails']), {
      timeoutMs: 30_000,
      intervalMs: 250,
    });
    await sampling.stop();

    const sent = mine();
    const distinct = new Set(sent.map((m) => m.to));
    const stats = server.consumerStatus().stats;
    return {
      name,
      group,
      t0,
      answers,
      late,
      smtp: sent,
      samples: sampling.samples,
      registered: registered.size,
      emails: sent.length,
      duplicates: sent.length - distinct.size,
      lost: [...registered].filter((address) => !distinct.has(address)).length,
      retried: stats.retried,
      deadLettered: stats.deadLettered,
    };
  } finally {
    await sampling?.stop().catch(() => undefined);
    await email?.app.close();
    await smtp.stop();
  }
}

/** Rows of the timeline chart: rates between consecutive samples (at the interval's start), backlog at each sample. */
function timeline(r: Round): Record<string, number | string>[] {
  const rows: Record<string, number | string>[] = [];
  const t = (at: number) => Math.round((at - r.t0) / 10) / 100;
  const rate = (times: number[], from: number, to: number) =>
    Math.round((times.filter((at) => at > from && at <= to).length / ((to - from) / 1000)) * 100) / 100;
  const answered = r.answers.filter((a) => a.status === 201).map((a) => a.at);
  const emailed = r.smtp.map((m) => m.at);
  for (let i = 0; i < r.samples.length; i++) {
    const { at, backlog } = r.samples[i];
    rows.push({ t: t(at), series: BACKLOG, value: backlog });
    if (i > 0) {
      const from = r.samples[i - 1].at;
      rows.push({ t: t(from), series: REGISTRATIONS, value: rate(answered, from, at) });
      rows.push({ t: t(from), series: EMAILS, value: rate(emailed, from, at) });
    }
  }
  return rows;
}

const slipped = (r: Round) => r.late > COUNT * SLIPPED_SHARE;

function check(r: Round): void {
  const failed = r.answers.filter((a) => a.status !== 201);
  const problems = [
    failed.length > 0
      ? `${failed.length} registrations failed (status ${[...new Set(failed.map((a) => a.status))].join(', ')})`
      : '',
    r.emails !== r.registered ? `${r.emails} emails for ${r.registered} registrations` : '',
    r.duplicates !== 0 ? `${r.duplicates} duplicate emails` : '',
    r.lost !== 0 ? `${r.lost} registrations never emailed` : '',
    r.deadLettered !== 0 ? `${r.deadLettered} events dead-lettered` : '',
  ].filter(Boolean);
  if (problems.length > 0) throw new Error(`${r.name} SMTP round: ${problems.join('; ')}`);
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const kafka = testKafka('bench-load-leveling', KAFKA_BROKERS);
  await ensureTopics(kafka, ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
  const api = await startApp(usersApiApp, loadConfig('users-api', usersApiConfigSchema, benchEnv({})));
  const db = new Client({ connectionString: DATABASE_URL });
  await db.connect();
  try {
    // Warm-up, then wait until the relay published every email request so far: each round's group starts after them.
    const warm = `leveling-warm-${randomUUID().slice(0, 8)}`;
    await inFlight(WARM_UP, 2, async (i) => {
      const status = await register(api.url, `${warm}-${i}@example.com`);
      if (status !== 201) throw new Error(`warm-up POST /users answered ${status}`);
    });
    await waitFor('the relay to publish every email request', async () => {
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM users_api.outbox
          WHERE event_type = 'email.requested.v1' AND published_at IS NULL AND parked_at IS NULL`,
      );
      return rows[0].n === 0;
    });

    let instant = await round('instant', api.url, db, kafka, 0, 60_000);
    check(instant);
    let instantRuns = 1;
    if (slipped(instant)) {
      process.stderr.write(`instant round: ${instant.late} of ${COUNT} requests started late; running it again\n`);
      instant = await round('instant', api.url, db, kafka, 0, 60_000);
      check(instant);
      instantRuns++;
    }
    const slow = await round('slow', api.url, db, kafka, SMTP_MS, (COUNT / CAPACITY) * 1500 + 30_000);
    check(slow);

    const latency = (r: Round) => summarize(r.answers.map((a) => a.ms));
    const fast = latency(instant);
    const held = latency(slow);
    const lastAnswer = Math.max(...slow.answers.map((a) => a.at));
    const lastEmail = Math.max(...slow.smtp.map((m) => m.at));
    // After the burst's last answer no event is added: the backlog only drains, at the SMTP server's pace.
    const drained = slow.smtp.filter((m) => m.at > lastAnswer).length;
    const drainSeconds = (lastEmail - lastAnswer) / 1000;
    const drainRate = drained / drainSeconds;
    const peak = Math.max(...slow.samples.map((s) => s.backlog));
    const answeredRate = (r: Round) => r.answers.length / ((Math.max(...r.answers.map((a) => a.at)) - r.t0) / 1000);

    const slowLabel = `slow SMTP (${SMTP_MS} ms a message, one at a time)`;
    const charts: Chart[] = [
      {
        name: 'timeline',
        title: `Slow SMTP round: ${RATE} registrations/s for ${BURST_SECONDS} s, SMTP capacity ${CAPACITY}/s`,
        values: timeline(slow),
        spec: {
          encoding: {
            x: { field: 't', type: 'quantitative', title: 'seconds since the burst began' },
            color: {
              field: 'series',
              type: 'nominal',
              title: null,
              scale: { domain: [REGISTRATIONS, EMAILS, BACKLOG], range: ['#4c78a8', '#f58518', '#54a24b'] },
              legend: { orient: 'top', symbolOpacity: 1 },
            },
          },
          layer: [
            {
              transform: [{ filter: `datum.series === '${BACKLOG}'` }],
              mark: { type: 'area', interpolate: 'step-after', opacity: 0.3, line: true },
              encoding: {
                y: {
                  field: 'value',
                  type: 'quantitative',
                  title: 'backlog (events published, not yet emailed)',
                  axis: { orient: 'right', titleColor: '#54a24b' },
                },
              },
            },
            {
              transform: [{ filter: `datum.series !== '${BACKLOG}'` }],
              mark: { type: 'line', interpolate: 'step-after' },
              encoding: { y: { field: 'value', type: 'quantitative', title: 'per second' } },
            },
          ],
          resolve: { scale: { y: 'independent' } },
        },
      },
      distributionChart(
        'latency',
        `POST /users latency, the same burst of ${COUNT} (share of requests at or below)`,
        [
          ['instant SMTP', instant.answers.map((a) => a.ms)],
          [slowLabel, slow.answers.map((a) => a.ms)],
        ],
        { x: 'ms from the scheduled start to the answer', y: 'share of requests' },
      ),
    ];

    writeFigure(
      {
        id: 'load-leveling',
        figure: 7,
        title: 'Load leveling: a registration burst at ten times the SMTP capacity',
        measurements: [
          { label: 'burst: scheduled rate', value: RATE, unit: 'registrations/s' },
          { label: 'burst: registrations per round', value: COUNT, unit: '' },
          { label: 'burst: answered rate, slow SMTP round', value: answeredRate(slow), unit: 'registrations/s' },
          {
            label: `requests started > ${LATE_MS} ms after their schedule, instant SMTP`,
            value: instant.late,
            unit: '',
          },
          { label: `requests started > ${LATE_MS} ms after their schedule, slow SMTP`, value: slow.late, unit: '' },
          { label: 'instant SMTP rounds run (a second when the first slipped)', value: instantRuns, unit: '' },
          {
            label: `SMTP capacity (1 at a time, ${SMTP_MS} ms each; CONSUMER_CONCURRENCY=1)`,
            value: CAPACITY,
            unit: 'emails/s',
          },
          { label: 'API latency p50, instant SMTP', value: fast.p50, unit: 'ms' },
          { label: 'API latency p99, instant SMTP', value: fast.p99, unit: 'ms' },
          { label: 'API latency p50, slow SMTP', value: held.p50, unit: 'ms' },
          { label: 'API latency p99, slow SMTP', value: held.p99, unit: 'ms' },
          { label: `peak email backlog (sampled every ${SAMPLE_MS} ms)`, value: peak, unit: 'events' },
          { label: 'drain rate after the burst', value: drainRate, unit: 'emails/s' },
          { label: "backlog drained, after the burst's last answer", value: drainSeconds, unit: 's' },
          { label: 'first request → last email, slow SMTP', value: (lastEmail - slow.t0) / 1000, unit: 's' },
          { label: 'emails / registrations, slow SMTP', value: slow.emails, unit: `/ ${slow.registered}` },
          { label: 'emails / registrations, instant SMTP', value: instant.emails, unit: `/ ${instant.registered}` },
          { label: 'duplicate emails, both rounds', value: instant.duplicates + slow.duplicates, unit: '' },
          { label: 'lost emails, both rounds', value: instant.lost + slow.lost, unit: '' },
          { label: 'retries (SMTP failures), both rounds', value: instant.retried + slow.retried, unit: '' },
        ],
        ratios: [
          atMost('API p99, slow SMTP ÷ instant SMTP', held.p99 / fast.p99, 1.1),
          atLeast('drain rate ÷ SMTP capacity', drainRate / CAPACITY, 0.9),
        ],
        notes: [
          ...[instant, slow]
            .filter(slipped)
            .map(
              (r) =>
                `**The ${r.name} round's schedule slipped**: ${r.late} of ${COUNT} requests started more than ${LATE_MS} ms late (the machine could not keep up with the burst), so its latency measures a saturated API, not the SMTP server's effect, and the p99 ratio says little.`,
            ),
          `One users-api serves both rounds; each round starts its own email-service in a fresh consumer group whose offsets are set to the end of \`emails\`, so it sees only its own ${COUNT} events. The burst is an open-loop schedule (request i due at i ÷ ${RATE} s, at most ${MAX_IN_FLIGHT} open); latency counts from the scheduled start to the answer, so a request held back by the bound or by a busy event loop counts its wait. The instant round runs first, after ${WARM_UP} warm-up registrations, and once more when its schedule slipped (more than ${SLIPPED_SHARE * 100} % of its requests late).`,
          `The backlog is read from the database every ${SAMPLE_MS} ms: the round's \`email.requested.v1\` outbox rows the relay marked published that have no inbox row of the round's group (the inbox row commits right after the SMTP server accepted). It is consumer lag counted in events, not Kafka offsets. Registrations/s and emails/s count the answers and the SMTP server's acceptances between two samples. The drain rate is the emails accepted after the burst's last answer divided by the time from then to the last email. At the end each round checks that every registration was emailed exactly once (SMTP recipients), that the group's inbox holds as many rows and that the group committed to the end of \`emails\`.`,
          `Noise: registration is CPU-bound (argon2id) and the load generator, users-api, email-service, the SMTP servers, the broker and PostgreSQL share 2 cores (and with whatever else runs), so a p99 of ${COUNT} requests is one of its slowest few and moves by tens of ms from run to run. In the instant round the email-service sends alongside the burst and takes CPU from it; in the slow round it mostly waits on the SMTP server.`,
        ],
        charts,
      },
      startedAt,
    );
  } finally {
    await db.end();
    await api.app.close();
  }
}

runBench(main);
