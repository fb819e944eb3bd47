import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import {
  cacheInvalidatorConfigSchema,
  emailServiceConfigSchema,
  loadConfig,
  notifierConfigSchema,
  videoProcessorConfigSchema,
} from '@app/config';
import { ALL_TOPICS } from '@app/contracts';
import { ensureTopics } from '@app/messaging';
import { RunningApp, startApp } from '@app/runtime';
import { cacheInvalidatorApp } from '../apps/cache-invalidator/src/app';
import { notifierApp } from '../apps/notifier/src/app';
import { videoProcessorApp } from '../apps/video-processor/src/app';
import { bootEmailService, bootUsersApi } from './support/apps';
import { startBroker, stopBroker, testKafka } from './support/broker';
import { ChildApp } from './support/child-app';
import { appEnv, TEST_DATABASE_URL } from './support/env';
import { EmailEvents, startGroupAtEnd, waitForDrained } from './support/kafka';
import { MetricFamily, parseExposition, sampleOf } from './support/prometheus';
import { SmtpCatcher } from './support/smtp';
import { waitFor } from './support/wait';

interface OutboxReadiness {
  status: string;
  relay: { leader: boolean; failingSince: string | null };
  pending: number;
  parked: number;
}

interface HealthBody {
  status: string;
  details: Record<string, Record<string, unknown> & { status: string; reason?: string }>;
}

async function get(url: string): Promise<{ status: number; body: HealthBody }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as HealthBody };
}

async function metricsOf(base: string): Promise<MetricFamily[]> {
  const response = await fetch(`${base}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await response.text());
}

function postUser(base: string, body: unknown): Promise<Response> {
  return fetch(`${base}/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** Lag per partition of `topic` for `group`, from an app's /metrics. */
async function lagOf(base: string, group: string, topic: string): Promise<Map<number, number>> {
  const families = await metricsOf(base);
  const lag = families.find((f) => f.name === 'kafka_consumer_group_lag');
  return new Map(
    (lag?.samples ?? [])
      .filter((s) => s.labels.group === group && s.labels.topic === topic)
      .map((s) => [Number(s.labels.partition), s.value]),
  );
}

/** Every app serves health, readiness and metrics; readiness follows the broker; lag follows a frozen replica. */
describe('health, readiness and metrics', () => {
  const smtp = new SmtpCatcher();
  const events = new EmailEvents();
  const group = `health-${randomUUID().slice(0, 8)}`;
  const apps: RunningApp[] = [];
  const db = new Client({ connectionString: TEST_DATABASE_URL });
  // Probes every 500 ms, each bounded by 1 s: readiness follows the broker within a few seconds. After a broker
  // restart the group waits for the members it knew to time out before the new consumer gets its partitions: a
  // 10 s session (30 s by default) keeps that wait short of the test's bound on a busy machine.
  const fast = {
    KAFKA_PROBE_INTERVAL_MS: '500',
    KAFKA_CONNECT_TIMEOUT_MS: '1000',
    CONSUMER_SESSION_TIMEOUT_MS: '10000',
  };
  let api: RunningApp;
  let email: RunningApp;

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    await startGroupAtEnd(group, 'emails');
    await smtp.start();
    api = await bootUsersApi(fast);
    email = await bootEmailService({ ...fast, SMTP_URL: smtp.url, EMAIL_CONSUMER_GROUP: group });
    apps.push(api, email);
    const env = appEnv(fast);
    apps.push(await startApp(videoProcessorApp, loadConfig('video-processor', videoProcessorConfigSchema, env)));
    apps.push(await startApp(cacheInvalidatorApp, loadConfig('cache-invalidator', cacheInvalidatorConfigSchema, env)));
    apps.push(await startApp(notifierApp, loadConfig('notifier', notifierConfigSchema, env)));
    await db.connect();
  });

  afterAll(async () => {
    for (const app of apps) await app.app.close().catch(() => undefined);
    await events.close();
    await smtp.stop();
    await db.end();
  });

  it('every app answers /health/live, /health/ready and /metrics in Prometheus text format', async () => {
    expect(apps).toHaveLength(5);
    // Some traffic first, so the request and consumer metrics have series: a registration, a bad one, a stray path.
    const address = `${group}-metrics@example.com`;
    const created = await postUser(api.url, {
      email: address,
      username: `${group}-m`,
      password: 'correct horse battery',
    });
    expect(created.status).toBe(201);
    const invalid = await postUser(api.url, {});
    expect(invalid.status).toBe(400);
    expect((await fetch(`${api.url}/no/such/path/${randomUUID()}`)).status).toBe(404);
    await waitFor('the welcome email', () => smtp.received.some((m) => m.to.includes(address)));

    for (const app of apps) {
      const live = await get(`${app.url}/health/live`);
      expect(live.status).toBe(200);
      // Each check once, under `details`: no second copy under `info` or `error`.
      expect(live.body).toEqual({ status: 'ok', details: { process: expect.objectContaining({ status: 'up' }) } });
      const ready = await waitFor(`${app.url} to be ready`, async () => {
        const answer = await get(`${app.url}/health/ready`);
        return answer.status === 200 ? answer : undefined;
      });
      expect(ready.body.details.kafka.status).toBe('up');
      expect(Object.keys(ready.body).sort()).toEqual(['details', 'status']);
      const families = await metricsOf(app.url);
      const names = families.map((f) => f.name);
      expect(names).toEqual(expect.arrayContaining(['process_cpu_seconds_total', 'http_request_duration_seconds']));
      expect(sampleOf(families, 'kafka_cluster_reachable')).toBe(1);
      // Prometheus conventions: counters end in _total, durations are histograms in seconds.
      for (const family of families) {
        if (family.type === 'counter') expect(family.name).toMatch(/_total$/);
        if (/duration/.test(family.name)) expect(family).toMatchObject({ type: 'histogram', name: /_seconds$/ });
      }
    }

    // users-api: the database and the outbox relay in readiness; request durations by route pattern and status.
    const apiReady = await get(`${api.url}/health/ready`);
    expect(apiReady.body.details.database.status).toBe('up');
    const outboxNow = async () =>
      (await get(`${api.url}/health/ready`)).body.details.outbox as unknown as OutboxReadiness;
    const before = await outboxNow();
    expect(before.relay).toMatchObject({ leader: true, failingSince: null });
    // A row the broker refused (parked) and a later event of its key, held behind it: both are pending, one is
    // parked, and readiness degrades — whatever rows other suites left in the shared test database.
    const key = randomUUID();
    const { rows: planted } = await db.query<{ id: string }>(
      `INSERT INTO users_api.outbox (event_id, event_type, topic, message_key, value, headers, parked_at, last_error)
       VALUES ($1, 'email.requested.v1', 'emails', $2, '{}', '{}', now(), 'refused (planted by the test)'),
              ($3, 'email.requested.v1', 'emails', $2, '{}', '{}', NULL, NULL)
       RETURNING id`,
      [randomUUID(), key, randomUUID()],
    );
    try {
      const withParked = await outboxNow();
      expect(withParked).toMatchObject({
        status: 'degraded',
        pending: before.pending + 2,
        parked: before.parked + 1,
        relay: { leader: true, failingSince: null },
      });
    } finally {
      await db.query('DELETE FROM users_api.outbox WHERE id = ANY($1)', [planted.map((row) => row.id)]);
    }
    const after = await outboxNow();
    expect(after).toMatchObject({ status: before.status, pending: before.pending, parked: before.parked });
    const apiMetrics = await metricsOf(api.url);
    const requests = (route: string, status: string) =>
      sampleOf(apiMetrics, 'http_request_duration_seconds', { method: 'POST', route, status });
    expect(requests('/users', '201')).toBeGreaterThanOrEqual(1);
    expect(requests('/users', '400')).toBeGreaterThanOrEqual(1);
    expect(
      sampleOf(apiMetrics, 'http_request_duration_seconds', { route: '(unmatched)', status: '404' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      apiMetrics
        .find((f) => f.name === 'http_request_duration_seconds')
        ?.samples.some((s) => s.labels.route?.includes('/no/such')),
    ).toBe(false);
    expect(sampleOf(apiMetrics, 'outbox_pending_messages')).toEqual(expect.any(Number));
    expect(sampleOf(apiMetrics, 'outbox_oldest_pending_age_seconds')).toEqual(expect.any(Number));

    // email-service: its group joined with partitions; the message counted and timed by type and outcome.
    const emailReady = await get(`${email.url}/health/ready`);
    expect(emailReady.body.details[`consumer:${group}`]).toMatchObject({
      status: 'up',
      state: 'joined',
      kind: 'durable',
    });
    const emailMetrics = await metricsOf(email.url);
    const labels = { group, event_type: 'email.requested.v1', outcome: 'handled' };
    expect(sampleOf(emailMetrics, 'kafka_consumer_messages_total', labels)).toBeGreaterThanOrEqual(1);
    expect(sampleOf(emailMetrics, 'kafka_consumer_handler_duration_seconds', labels)).toBeGreaterThanOrEqual(1);
    expect(sampleOf(emailMetrics, 'kafka_consumer_retry_backlog', { group })).toBe(0);
    expect(sampleOf(emailMetrics, 'kafka_consumer_assigned_partitions', { group })).toBe(6);
    await waitForDrained(group, ['emails']);
    const lag = await lagOf(email.url, group, 'emails');
    expect([...lag.keys()].sort()).toEqual([0, 1, 2]);
    expect([...lag.values()]).toEqual([0, 0, 0]);
  });

  it('ready turns 503 within two probes of losing the broker and 200 after it returns; users-api only degrades', async () => {
    // Two failed probes in a row mark the cluster lost. A probe starts at most an interval after the last one ended
    // and fails within its deadline (the interval or the connect timeout, the longer): the bound once the broker is
    // gone, plus the 100 ms this test polls at.
    const config = loadConfig('email-service', emailServiceConfigSchema, appEnv(fast));
    const interval = config.KAFKA_PROBE_INTERVAL_MS;
    const boundMs = 2 * (interval + Math.max(interval, config.KAFKA_CONNECT_TIMEOUT_MS)) + 100;
    const stopped = Date.now();
    await stopBroker();
    const stopTook = Date.now() - stopped;
    try {
      // Its consumer may fail readiness sooner (its connection dropped); the probes are what bound it.
      const down = await waitFor(
        'email-service readiness to fail with Kafka down',
        async () => {
          const answer = await get(`${email.url}/health/ready`);
          return answer.status === 503 && answer.body.details?.kafka?.status === 'down' ? answer : undefined;
        },
        { timeoutMs: boundMs + 5000, intervalMs: 100 },
      );
      const noticed = Date.now() - stopped;
      // Measured from when the broker was gone: while it shuts down it may still answer.
      expect(noticed - stopTook).toBeLessThanOrEqual(boundMs);
      expect(Object.keys(down.body).sort()).toEqual(['details', 'status']);
      expect(down.body.status).toBe('error');
      expect(down.body.details.kafka.status).toBe('down');
      expect(down.body.details[`consumer:${group}`]).toMatchObject({ status: 'down', reason: expect.any(String) });
      // Every consumer app fails readiness; users-api keeps taking registrations (the outbox holds their events).
      for (const app of apps.slice(2)) {
        // Each app probes on its own timer.
        await waitFor(
          `${app.url} readiness to fail`,
          async () => (await get(`${app.url}/health/ready`)).status === 503,
          {
            timeoutMs: 15_000,
          },
        );
      }
      // users-api probes on its own timer too: wait for it to notice, staying ready (200) all along.
      const apiReady = await waitFor(
        'users-api to mark Kafka degraded',
        async () => {
          const answer = await get(`${api.url}/health/ready`);
          expect(answer.status).toBe(200);
          return answer.body.details.kafka.status === 'degraded' ? answer : undefined;
        },
        { timeoutMs: 15_000 },
      );
      expect(apiReady.status).toBe(200);
      const address = `${group}-outage@example.com`;
      const during = await postUser(api.url, {
        email: address,
        username: `${group}-o`,
        password: 'correct horse battery',
      });
      expect(during.status).toBe(201);
      expect(sampleOf(await metricsOf(email.url), 'kafka_cluster_reachable')).toBe(0);

      const restarted = Date.now();
      await startBroker();
      await waitFor(
        'email-service readiness to come back',
        async () => (await get(`${email.url}/health/ready`)).status === 200,
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      const back = Date.now() - restarted;
      for (const app of apps) {
        await waitFor(`${app.url} ready again`, async () => (await get(`${app.url}/health/ready`)).status === 200);
      }
      await waitFor(
        'the registration made during the outage to be mailed',
        () => smtp.received.some((m) => m.to.includes(address)),
        { timeoutMs: 60_000 },
      );
      process.stdout.write(
        `readiness: broker stop took ${stopTook} ms; 503 ${noticed} ms after the stop began (${noticed - stopTook} ms after the broker was gone, bound ${boundMs} ms); 200 ${back} ms after the restart began\n`,
      );
    } finally {
      await startBroker().catch(() => undefined);
    }
  });

  it('consumer lag rises while a replica is frozen and falls once the group hands its partitions on', async () => {
    const lagGroup = `lag-${randomUUID().slice(0, 8)}`;
    await startGroupAtEnd(lagGroup, 'emails');
    // Its own mailbox: the suite's other email-service (another group) mails the same events too.
    const mailbox = await new SmtpCatcher().start();
    const env = {
      SMTP_URL: mailbox.url,
      EMAIL_CONSUMER_GROUP: lagGroup,
      CONSUMER_SESSION_TIMEOUT_MS: '10000',
      CONSUMER_HEARTBEAT_INTERVAL_MS: '1000',
    };
    const watcher = await bootEmailService(env);
    apps.push(watcher);
    const frozen = new ChildApp('email-service', `${lagGroup}-frozen`, env);
    await frozen.start(`consuming as group ${lagGroup}`);
    try {
      const frozenUrl = /listening on (http:\/\/[^\s;]+)/.exec(frozen.printed)?.[1];
      expect(frozenUrl).toBeDefined();
      // Both members joined: the frozen one holds part of `emails`, by its own readiness report.
      const held = await waitFor('the group to split the partitions between the two', async () => {
        const { body } = await get(`${frozenUrl}/health/ready`);
        const consumer = body.details[`consumer:${lagGroup}`] as {
          state?: string;
          assigned?: Record<string, number[]>;
        };
        const mine = watcher.server.consumerStatus().membership;
        if (consumer.state !== 'joined' || mine.state !== 'joined') return undefined;
        const theirs = consumer.assigned?.emails ?? [];
        const ours = mine.assigned.emails ?? [];
        return theirs.length + ours.length === 3 ? theirs : undefined;
      });
      expect(held.length).toBeGreaterThan(0);

      frozen.signal('SIGSTOP');
      const records = await events.publish(30, lagGroup);
      const addresses = records.map((r) => (JSON.parse(r.value) as { data: { to: string } }).data.to);
      // Rising: the frozen replica's partitions pile up; the watcher's own reach 0.
      const risen = await waitFor('lag on the frozen replica’s partitions', async () => {
        const lag = await lagOf(watcher.url, lagGroup, 'emails');
        const frozenLag = held.reduce((n, p) => n + (lag.get(p) ?? 0), 0);
        const ownLag = [...lag].filter(([p]) => !held.includes(p)).reduce((n, [, v]) => n + v, 0);
        return frozenLag > 0 && ownLag === 0 ? frozenLag : undefined;
      });
      // Falling: after the session timeout the group hands the partitions to the watcher, which catches up.
      const started = Date.now();
      await waitFor(
        'lag to fall to 0 once the frozen member is out of the group',
        async () => {
          // All three partitions reported (a missing series means unknown, not 0) and each at 0.
          const lag = await lagOf(watcher.url, lagGroup, 'emails');
          return lag.size === 3 && [...lag.values()].every((v) => v === 0);
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      const fell = Date.now() - started;
      await waitForDrained(lagGroup, ['emails']);
      for (const address of addresses) expect(mailbox.to(address)).toHaveLength(1);
      process.stdout.write(`lag: rose to ${risen} on the frozen replica's partitions; back to 0 in ${fell} ms\n`);
    } finally {
      await frozen.stop('SIGKILL');
      await mailbox.stop();
    }
  });
});
