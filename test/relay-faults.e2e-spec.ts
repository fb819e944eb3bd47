import { randomUUID } from 'node:crypto';
import { Kafka } from 'kafkajs';
import { Client } from 'pg';
import { ALL_TOPICS } from '@app/contracts';
import { ensureDatabase } from '@app/database';
import { ensureTopics } from '@app/messaging';
import { testKafka } from './support/broker';
import { ChildApp } from './support/child-app';
import { freshDatabase, KafkaInstance } from './support/cluster';
import { TEST_DATABASE_URL } from './support/env';
import { FaultRow, printFaultTable } from './support/fault-table';
import { readTopic, topicEnds } from './support/kafka';
import { emailEventIds, publishedCount } from './support/outbox-queries';
import { TcpProxy } from './support/tcp-proxy';
import { waitFor } from './support/wait';

/**
 * The outbox relay under faults that leave it alive but unable to do its work: its pool's connection goes silent
 * while its lock session still answers; one partition of a topic it writes to has no leader.
 */
const rows: FaultRow[] = [];

const urlOf = (app: ChildApp) => /listening on (http:\/\/\S+)/.exec(app.printed)![1];

async function register(app: ChildApp, prefix: string): Promise<string> {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  const response = await fetch(`${urlOf(app)}/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `${name}@example.com`, username: name, password: 'correct horse battery staple' }),
  });
  const body = (await response.json()) as { id?: string };
  expect(response.status).toBe(201);
  return body.id as string;
}

const isLeader = async (app: ChildApp) =>
  ((await (await fetch(`${urlOf(app)}/health`)).json()) as { relay: { leader: boolean } }).relay.leader;

/** How many of these event ids are on the topic (each counted once). */
async function presentOn(topic: string, ids: string[], kafka: Kafka): Promise<number> {
  const messages = await readTopic(topic, await topicEnds(topic, kafka), kafka);
  const seen = new Set(messages.map((m) => m.headers.ce_id));
  return ids.filter((id) => seen.has(id)).length;
}

/** One metadata answer for the topic, without retries (kafkajs throws when any of its partitions has an error). */
async function metadataOf(kafka: Kafka, topic: string): Promise<{ partitions: { leader: number }[] }> {
  const admin = kafka.admin({ retry: { retries: 0 } });
  await admin.connect();
  try {
    return (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0];
  } finally {
    await admin.disconnect();
  }
}

afterAll(() => printFaultTable('Relay faults', rows));

describe('relay faults: a pool that goes silent while the lock session answers', () => {
  const db = new Client({ connectionString: TEST_DATABASE_URL });
  const apps: ChildApp[] = [];
  let proxy: TcpProxy;

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    await ensureDatabase(TEST_DATABASE_URL);
    await db.connect();
    proxy = await new TcpProxy(Number(new URL(TEST_DATABASE_URL).port || 5432)).start();
  });

  afterAll(async () => {
    for (const app of apps) await app.stop('SIGKILL').catch(() => undefined);
    await proxy.stop();
    await db.end();
  });

  it('the leader whose pool hangs gives up its lock; the standby publishes every event written meanwhile', async () => {
    const pooled = new URL(TEST_DATABASE_URL);
    pooled.port = String(proxy.port);
    const env = {
      OUTBOX_LEADER_TIMEOUT_MS: '3000',
      OUTBOX_IDLE_POLL_MS: '500',
      OUTBOX_MAX_BACKOFF_MS: '1000',
      DATABASE_STATEMENT_TIMEOUT_MS: '2000',
      INBOX_LOCK_TIMEOUT_MS: '1000',
      OUTBOX_PROGRESS_TIMEOUT_MS: '6000',
      LOG_LEVEL: 'log',
    };
    const suffix = randomUUID().slice(0, 6);
    // As behind a transaction pooler: the pool goes through it, the lock session connects directly.
    const leader = new ChildApp('users-api', `relay-silent-pool-${suffix}`, {
      ...env,
      DATABASE_URL: pooled.toString(),
      OUTBOX_LOCK_DATABASE_URL: TEST_DATABASE_URL,
    });
    apps.push(leader);
    await leader.start('listening on', 60_000);
    await waitFor('the first replica to lead', () => isLeader(leader));
    const standby = new ChildApp('users-api', `relay-standby-${suffix}`, env);
    apps.push(standby);
    await standby.start('listening on', 60_000);
    const first = [await register(leader, 'silent')];
    await waitFor('the leader publishing', async () => (await publishedCount(db, first)) === 2);

    proxy.blackhole(true);
    const silentAt = Date.now();
    const written: string[] = [];
    for (let i = 0; i < 5; i++) written.push(await register(standby, 'silent'));
    await waitFor(
      'the standby to publish the events written while the pool is silent',
      async () => {
        return (await publishedCount(db, written)) === 2 * written.length;
      },
      { timeoutMs: 45_000, intervalMs: 250 },
    );
    const takeoverMs = Date.now() - silentAt;
    expect(await isLeader(standby)).toBe(true);
    expect(leader.printed).toContain('completed no round');

    // The pool comes back: the old leader's dropped connections are replaced and it serves requests again.
    proxy.blackhole(false);
    const after = [await register(leader, 'silent')];
    await waitFor('the event written through the healed pool', async () => (await publishedCount(db, after)) === 2);

    const ids = await emailEventIds(db, [...first, ...written, ...after]);
    const present = await presentOn('emails', ids, testKafka());
    rows.push({
      scenario: 'pool silent, lock session answering',
      created: ids.length,
      published: present,
      emails: 0,
      duplicates: 0,
      lost: ids.length - present,
      deadLetters: 0,
      note: `standby published ${takeoverMs} ms after the pool went silent (progress timeout 6000 ms)`,
    });
    expect(present).toBe(ids.length);
  }, 180_000);
});

describe('relay faults: one partition without a leader, in a three-node cluster', () => {
  const cluster = new KafkaInstance('relay-cluster', 29800, 3);
  const apps: ChildApp[] = [];
  let db: Client;
  let api: ChildApp;
  // One failed send to a leaderless partition costs kafkajs's nested retries (minutes): few rounds, each counted.
  const maxAttempts = 1;

  beforeAll(async () => {
    await cluster.start();
    const databaseUrl = await freshDatabase('kafka_nest_relay_cluster');
    db = new Client({ connectionString: databaseUrl });
    await db.connect();
    api = new ChildApp('users-api', `relay-cluster-api-${randomUUID().slice(0, 6)}`, {
      KAFKA_BROKERS: cluster.brokers,
      KAFKA_REPLICATION_FACTOR: '3',
      KAFKA_MIN_INSYNC_REPLICAS: '2',
      DATABASE_URL: databaseUrl,
      OUTBOX_MAX_ATTEMPTS: String(maxAttempts),
      OUTBOX_IDLE_POLL_MS: '500',
      OUTBOX_MAX_BACKOFF_MS: '1000',
      LOG_LEVEL: 'log',
    });
    apps.push(api);
    await api.start('listening on', 90_000);
  }, 240_000);

  afterAll(async () => {
    for (const app of apps) await app.stop('SIGKILL').catch(() => undefined);
    await db?.end();
    await cluster.destroy();
  });

  it('rows for the leaderless partition are never parked, other topics flow, and they publish once the node returns', async () => {
    const kafka = cluster.kafka();
    const topic = `leaderless-${randomUUID().slice(0, 8)}`;
    const admin = kafka.admin();
    await admin.connect();
    try {
      // Partition 0 lives on node 3 alone: with node 3 gone it has no leader, and no replica to elect.
      await admin.createTopics({
        waitForLeaders: false,
        topics: [
          {
            topic,
            replicaAssignment: [
              { partition: 0, replicas: [3] },
              { partition: 1, replicas: [1] },
              { partition: 2, replicas: [2] },
            ],
          },
        ],
      });
    } finally {
      await admin.disconnect();
    }
    await waitFor(`${topic} served with a leader for each partition`, async () => {
      const metadata = await metadataOf(kafka, topic);
      return metadata.partitions.length === 3 && metadata.partitions.every((p) => p.leader > 0);
    });
    const warmUp = [await register(api, 'leaderless')];
    await waitFor('the relay publishing', async () => (await publishedCount(db, warmUp)) === 2, { timeoutMs: 60_000 });

    await cluster.kill(3);
    // Once the controller fences node 3, the cluster answers LEADER_NOT_AVAILABLE for partition 0.
    await waitFor(
      `${topic}/0 without a leader`,
      () =>
        metadataOf(kafka, topic).then(
          () => false,
          (error: { type?: string; cause?: { type?: string } }) =>
            (error.cause ?? error).type === 'LEADER_NOT_AVAILABLE',
        ),
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const stuckIds: string[] = [];
    for (const key of ['k0', 'k1', 'k2']) {
      const eventId = randomUUID();
      await db.query(
        `INSERT INTO users_api.outbox (event_id, event_type, topic, message_key, value, headers)
         VALUES ($1, 'email.requested.v1', $2, $3, '{}', jsonb_build_object('ce_id', $4::text))`,
        [eventId, topic, key, eventId],
      );
      stuckIds.push(eventId);
    }
    // Each registration is published in a round of its own, and each such round also tries the leaderless rows.
    const userIds: string[] = [];
    const rounds = 3 * maxAttempts;
    for (let i = 0; i < rounds; i++) {
      const id = await register(api, 'leaderless');
      userIds.push(id);
      await waitFor(
        `registration ${i + 1} published beside the leaderless rows`,
        async () => {
          return (await publishedCount(db, [id])) === 2;
        },
        { timeoutMs: 480_000, intervalMs: 500 },
      );
    }
    const { rows: stuck } = await db.query<{ parked: boolean; attempts: number; last_error: string | null }>(
      `SELECT parked_at IS NOT NULL AS parked, attempts, last_error FROM users_api.outbox
        WHERE topic = $1 AND published_at IS NULL ORDER BY id`,
      [topic],
    );
    expect(stuck).toHaveLength(3);
    // The fault the relay met is the one injected: a partition without a leader.
    expect(stuck.some((row) => /leader/i.test(row.last_error ?? ''))).toBe(true);
    expect(stuck.map((row) => row.parked)).toEqual([false, false, false]);
    expect(stuck.map((row) => row.attempts)).toEqual([0, 0, 0]);

    await cluster.startNode(3);
    await waitFor(
      'the leaderless rows published once node 3 is back',
      async () => {
        const { rows: left } = await db.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM users_api.outbox WHERE topic = $1 AND published_at IS NULL',
          [topic],
        );
        return left[0].n === 0;
      },
      { timeoutMs: 600_000, intervalMs: 500 },
    );
    const onLeaderless = await presentOn(topic, stuckIds, kafka);
    const emailIds = await emailEventIds(db, [...warmUp, ...userIds]);
    const onEmails = await presentOn('emails', emailIds, kafka);
    rows.push({
      scenario: 'cluster: one partition without a leader',
      created: stuckIds.length + emailIds.length,
      published: onLeaderless + onEmails,
      emails: 0,
      duplicates: 0,
      lost: stuckIds.length - onLeaderless + emailIds.length - onEmails,
      deadLetters: 0,
      note: `${rounds} rounds published other topics meanwhile (OUTBOX_MAX_ATTEMPTS ${maxAttempts}); none parked`,
    });
    expect(onLeaderless).toBe(stuckIds.length);
    expect(onEmails).toBe(emailIds.length);
  }, 2_700_000);
});
