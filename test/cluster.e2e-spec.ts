import { randomUUID } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import { Client } from 'pg';
import { kafkaToolConfigSchema, loadConfig } from '@app/config';
import { SigningKeys } from '@app/auth';
import { createKafka, EventProducer } from '@app/messaging';
import { signUp } from './support/accounts';
import { ChildApp } from './support/child-app';
import { freshDatabase, KafkaInstance } from './support/cluster';
import { FaultRow, printFaultTable, tally } from './support/fault-table';
import { readTopic, topicEnds } from './support/kafka';
import { emailEventIds, publishedCount } from './support/outbox-queries';
import { SmtpCatcher } from './support/smtp';
import { waitFor } from './support/wait';

/**
 * The promises on a replicated cluster: three KRaft nodes on loopback (scripts/kafka.sh --nodes 3), topics with
 * replication factor 3 and min.insync.replicas 2, users-api and email-service as deployed processes. Nodes die by
 * SIGKILL, as in a crash; the apps are never restarted unless the scenario is about restarting them.
 */
describe('fault suite: a three-broker cluster', () => {
  const cluster = new KafkaInstance('cluster', 29600, 3);
  const smtp = new SmtpCatcher();
  const rows: FaultRow[] = [];
  const apps: ChildApp[] = [];
  let databaseUrl = '';
  let db: Client;
  let api: ChildApp;
  /** One signing key for every users-api replica: a token one signed holds on the others. */
  let signingKeys = '';
  let mailer: ChildApp;

  const env = (overrides: Record<string, string> = {}) => ({
    KAFKA_BROKERS: cluster.brokers,
    KAFKA_REPLICATION_FACTOR: '3',
    KAFKA_MIN_INSYNC_REPLICAS: '2',
    KAFKA_PROBE_INTERVAL_MS: '500',
    DATABASE_URL: databaseUrl,
    ...overrides,
  });

  const urlOf = (app: ChildApp) => /listening on (http:\/\/\S+)/.exec(app.printed)![1];

  async function startApi(label: string): Promise<ChildApp> {
    signingKeys ||= JSON.stringify({ keys: [await SigningKeys.newJwk()] });
    const app = new ChildApp(
      'users-api',
      `cluster-${label}-${randomUUID().slice(0, 6)}`,
      env({ PORT: '0', AUTH_SIGNING_KEYS: signingKeys }),
    );
    apps.push(app);
    await app.start('listening on', 90_000);
    return app;
  }

  async function register(prefix: string): Promise<{ status: number; id?: string }> {
    const name = `${prefix}-${randomUUID().slice(0, 8)}`;
    try {
      const response = await fetch(`${urlOf(api)}/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          email: `${name}@example.com`,
          username: name,
          password: 'correct horse battery staple',
        }),
      });
      const body = (await response.json()) as { id?: string };
      return { status: response.status, id: body.id };
    } catch {
      return { status: 0 };
    }
  }

  async function readiness(app: ChildApp): Promise<{ status: number; outbox?: Record<string, unknown> }> {
    const response = await fetch(`${urlOf(app)}/health/ready`);
    const body = (await response.json()) as { details?: Record<string, Record<string, unknown>> };
    return { status: response.status, outbox: body.details?.outbox };
  }

  /** A wait that failed says where the events stopped: in the outbox, or in front of the consumer. */
  async function explained<T>(wait: Promise<T>, userIds: string[], eventIds: string[] = []): Promise<T> {
    try {
      return await wait;
    } catch (error) {
      const published = await publishedCount(db, userIds);
      const health = await fetch(`${urlOf(mailer)}/health/ready`).then((r) => r.text(), String);
      const where = await whereAre(eventIds.filter((id) => tally(smtp.received, [id]).emails === 0)).catch(String);
      throw new Error(
        `${(error as Error).message}; ${published} outbox rows published; ${where}; email-service: ${health}`,
        { cause: error },
      );
    }
  }

  /** Where events never emailed sit on `emails`, against the group's committed offsets and the partitions' ends. */
  async function whereAre(missing: string[]): Promise<string> {
    const kafka = cluster.kafka();
    const ends = await topicEnds('emails', kafka);
    const found = (await readTopic('emails', ends, kafka))
      .filter((message) => missing.includes(message.headers.ce_id))
      .map((message) => `${message.partition}@${message.offset}`);
    const admin = kafka.admin();
    await admin.connect();
    try {
      const [committed] = await admin.fetchOffsets({ groupId: 'email-service', topics: ['emails'] });
      const offsets = committed.partitions.map((p) => `${p.partition}:${p.offset}/${String(ends.get(p.partition))}`);
      return `${missing.length} not emailed, on the topic at [${found.join(' ')}]; committed/end [${offsets.join(' ')}]`;
    } finally {
      await admin.disconnect();
    }
  }

  const parkedRows = async () =>
    (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM users_api.outbox WHERE parked_at IS NOT NULL'))
      .rows[0].n;

  beforeAll(async () => {
    await cluster.start();
    databaseUrl = await freshDatabase('kafka_nest_test_cluster');
    db = new Client({ connectionString: databaseUrl });
    await db.connect();
    await smtp.start();
    api = await startApi('api');
    mailer = new ChildApp(
      'email-service',
      `cluster-mailer-${randomUUID().slice(0, 6)}`,
      env({ SMTP_URL: smtp.url, EMAIL_CONSUMER_GROUP: 'email-service' }),
    );
    apps.push(mailer);
    await mailer.start('consuming as group', 90_000);
  }, 240_000);

  afterAll(async () => {
    for (const app of apps) await app.stop('SIGKILL').catch(() => undefined);
    await smtp.stop();
    await db?.end();
    await cluster.destroy();
    if (rows.length > 0) printFaultTable('Fault suite summary (three-broker cluster)', rows);
  });

  it('the topics the apps create are replicated three ways with min.insync.replicas 2', async () => {
    const admin = cluster.kafka().admin();
    await admin.connect();
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: ['users', 'emails', 'email-service.dlt'] });
      for (const topic of metadata.topics) {
        expect(topic.partitions.map((p) => p.replicas.length)).toEqual([3, 3, 3]);
      }
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2, name: 'emails', configNames: ['min.insync.replicas'] }],
      });
      // Set on the topic by the app (configSource 1: a topic's own config), not inherited from the brokers' default.
      expect(configs.resources[0].configEntries[0]).toMatchObject({
        configName: 'min.insync.replicas',
        configValue: '2',
        configSource: 1,
      });
    } finally {
      await admin.disconnect();
    }
  });

  it('the leader of a partition in use dies mid-flow: every acknowledged registration is emailed once, no restart', async () => {
    const victim = await cluster.leaderOf('emails', 0);
    const ids: string[] = [];
    let refused = 0;
    let flowing = true;
    const flow = async () => {
      while (flowing) {
        const result = await register('leader');
        if (result.status === 201 && result.id) ids.push(result.id);
        else refused += 1;
        // A steady stream (about 15/s), not a flood: the point is traffic across the failover.
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const flows = [flow(), flow()];
    await waitFor('registrations flowing', () => ids.length >= 15, { timeoutMs: 30_000 });
    await cluster.kill(victim);
    const killedAt = Date.now();
    const before = ids.length;
    // On through the election: the dead node is fenced after broker.session.timeout.ms (6 s) and leaders move.
    await waitFor(
      'registrations for 12 s after the kill',
      () => Date.now() - killedAt > 12_000 && ids.length > before + 20,
      {
        timeoutMs: 60_000,
      },
    );
    flowing = false;
    await Promise.all(flows);

    const expected = await emailEventIds(db, ids);
    expect(expected).toHaveLength(ids.length);
    await explained(
      waitFor(`${expected.length} welcome emails`, () => tally(smtp.received, expected).emails === expected.length, {
        timeoutMs: 120_000,
        intervalMs: 250,
      }),
      ids,
    );
    await waitFor('the outbox published every row', async () => (await publishedCount(db, ids)) === 2 * ids.length, {
      timeoutMs: 30_000,
    });
    const result = tally(smtp.received, expected);
    const parked = await parkedRows();
    rows.push({
      scenario: `cluster: leader of emails/0 (node ${victim}) SIGKILLed mid-flow`,
      created: ids.length,
      published: await publishedCount(db, ids),
      ...result,
      deadLetters: 0,
      note: `${refused} requests refused; parked rows ${parked}`,
    });
    expect(refused).toBe(0);
    expect(result).toEqual({ emails: ids.length, duplicates: 0, lost: 0 });
    expect(parked).toBe(0);
    // The relay and the consumer recovered in the processes that were running all along.
    expect([api.running, mailer.running]).toEqual([true, true]);

    await cluster.startNode(victim);
    await cluster.waitForFullIsr(['users', 'emails']);
  });

  it('one send across two brokers while a partition it writes to changes leader: every record it acknowledged is on the topic', async () => {
    // Partition 0 led by node 1, partition 1 by node 2 (node 1 next in line): each send holds one record for each.
    const topic = `cluster-split-send-${randomUUID().slice(0, 8)}`;
    const kafka = cluster.kafka();
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic,
            replicaAssignment: [
              { partition: 0, replicas: [1, 3, 2] },
              { partition: 1, replicas: [2, 1, 3] },
            ],
            configEntries: [{ name: 'min.insync.replicas', value: '2' }],
          },
        ],
      });
    } finally {
      await admin.disconnect();
    }
    const partitioner = Partitioners.DefaultPartitioner();
    const partitionMetadata = [0, 1].map((partitionId) => ({
      partitionId,
      leader: partitionId + 1,
      replicas: [1, 2, 3],
      isr: [1, 2, 3],
      partitionErrorCode: 0,
    }));
    const keyFor = (partition: number) => {
      for (let i = 0; ; i++) {
        const key = `split-${partition}-${i}`;
        if (partitioner({ topic, partitionMetadata, message: { key, value: null } }) === partition) return key;
      }
    };
    const record = (partition: number, label: string) => ({
      topic,
      key: keyFor(partition),
      value: `${label}-${randomUUID()}`,
    });
    const producer = new EventProducer(
      createKafka(loadConfig('kafka-tool', kafkaToolConfigSchema, env({})), 'e2e-split-send'),
    );
    try {
      // Its metadata now names node 2 as the leader of partition 1, and nothing makes it look again.
      await producer.send([record(0, 'warm'), record(1, 'warm')]);
      // Node 2 dies and comes back: node 1 now leads partition 1, node 2 follows and answers NOT_LEADER to a send.
      await cluster.kill(2);
      await waitFor('node 1 to lead partition 1', async () => (await cluster.leaderOf(topic, 1)) === 1, {
        timeoutMs: 60_000,
        intervalMs: 250,
      });
      await cluster.startNode(2);
      await cluster.waitForFullIsr([topic]);
      const batch = [record(0, 'split'), record(1, 'split')];
      // As the relay does: a send that fails is sent again, whole, until one is acknowledged.
      let failures = 0;
      await waitFor(
        'the send to be acknowledged',
        () =>
          producer.send(batch).then(
            () => true,
            () => {
              failures += 1;
              return false;
            },
          ),
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      const written = (await readTopic(topic, await topicEnds(topic, kafka), kafka)).map((m) => m.value);
      rows.push({
        scenario: 'cluster: one send across two brokers, a leader moves',
        created: 2,
        published: written.filter((value) => batch.some((r) => r.value === value)).length,
        emails: 0,
        duplicates: 0,
        lost: batch.filter((r) => !written.includes(r.value)).length,
        deadLetters: 0,
        note: `${failures} failed send(s) before the acknowledged one`,
      });
      // Acknowledged means written: the record for the partition that moved is there too.
      expect(batch.filter((r) => !written.includes(r.value))).toEqual([]);
    } finally {
      await producer.disconnect();
      await cluster.startNode(2); // a no-op unless the test failed half-way
      await cluster.waitForFullIsr([topic, 'users', 'emails', 'posts']);
    }
  });

  it('two of three brokers down: writes stop cleanly (the outbox holds the events, readiness says so) and drain when one returns', async () => {
    const survivor = await cluster.leaderOf('emails', 1);
    const down = [1, 2, 3].filter((node) => node !== survivor);
    for (const node of down) await cluster.kill(node);

    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const result = await register('minority');
      expect(result.status).toBe(201);
      ids.push(result.id!);
    }
    const expected = await emailEventIds(db, ids);
    // The relay fails to get acks=all from two in-sync replicas; the rows stay pending and readiness names it.
    const report = await waitFor(
      'readiness to report the outbox held back',
      async () => {
        const ready = await readiness(api);
        return ready.outbox?.status === 'degraded' && Number(ready.outbox.pending) >= 20 ? ready : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    // Failing sends, or one send waiting on replicas that are gone: either way the relay is stalled.
    const relay = report.outbox?.relay as { failingSince: string | null; sendingSince: string | null };
    expect(relay.failingSince ?? relay.sendingSince).toEqual(expect.any(String));
    expect(Number(report.outbox?.oldestPendingSeconds)).toBeGreaterThan(0);
    expect(await publishedCount(db, ids)).toBe(0);
    // Nothing reached a consumer: a record short of its in-sync replicas is never visible.
    expect(tally(smtp.received, expected).emails).toBe(0);

    await cluster.startNode(down[0]);
    await explained(
      waitFor(`${expected.length} welcome emails`, () => tally(smtp.received, expected).emails === expected.length, {
        timeoutMs: 120_000,
        intervalMs: 250,
      }),
      ids,
      expected,
    );
    await waitFor(
      'the outbox to drain and readiness to clear',
      async () => {
        const ready = await readiness(api);
        return ready.outbox?.status === 'up' && Number(ready.outbox.pending) === 0;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const result = tally(smtp.received, expected);
    rows.push({
      scenario: 'cluster: two of three brokers down, then one back',
      created: ids.length,
      published: await publishedCount(db, ids),
      ...result,
      deadLetters: 0,
      note: `held: ${String(report.outbox?.pending)} rows pending while down`,
    });
    expect(result).toEqual({ emails: ids.length, duplicates: 0, lost: 0 });
    expect([api.running, mailer.running]).toEqual([true, true]);

    await cluster.startNode(down[1]);
    await cluster.waitForFullIsr(['users', 'emails', 'posts']);
  });

  it('per-key order holds with the relay killed between and around two events of a key, over many keys', async () => {
    const second = await startApi('api-2');
    const replicas = [api, second];
    const author = await signUp(urlOf(api), `author-${randomUUID().slice(0, 8)}`);
    const posts = cluster.kafka();
    const from = await topicEnds('posts', posts);
    let restarts = 0;

    /** SIGKILLs whichever replica holds the relay lock (once one does), and starts it again. */
    async function killRelay(): Promise<void> {
      const leader = await waitFor(
        'a replica holding the relay lock',
        async () => {
          for (const replica of replicas.filter((r) => r.running)) {
            const health = (await (await fetch(`${urlOf(replica)}/health`)).json()) as { relay: { leader: boolean } };
            if (health.relay.leader) return replica;
          }
          return undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      await leader.stop('SIGKILL');
      await leader.start('listening on', 90_000);
      restarts += 1;
    }

    /** Sends to a live replica; a request cut by a kill is sent again to one (whether it committed, the database says). */
    async function call(method: string, path: string, body: unknown): Promise<{ id?: string } | undefined> {
      for (let attempt = 0; attempt < 20; attempt++) {
        const live = replicas.filter((r) => r.running);
        const target = live[Math.floor(Math.random() * live.length)];
        try {
          if (!target) throw new Error('no replica up');
          const response = await fetch(`${urlOf(target)}${path}`, {
            method,
            headers: { 'content-type': 'application/json', 'if-match': '*', ...author.auth },
            body: JSON.stringify(body),
          });
          return response.ok ? ((await response.json()) as { id?: string }) : undefined;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
      return undefined;
    }

    for (let round = 0; round < 2; round++) {
      const created: string[] = [];
      const creating = Array.from({ length: 24 }, async (_, i) => {
        const post = await call('POST', '/posts', { title: `round ${round} post ${i}`, body: 'text' });
        if (post?.id) created.push(post.id);
      });
      await waitFor('some posts created', () => created.length >= 8, { timeoutMs: 30_000 });
      await killRelay(); // among the creates
      await Promise.all(creating);
      await killRelay(); // between the creates and the updates
      const updating = created.map((id, i) =>
        call('PATCH', `/posts/${id}`, { title: `round ${round} post ${i}, edited` }),
      );
      await killRelay(); // among the updates
      await Promise.all(updating);
    }

    // What the database committed, in commit order per key, is what every consumer must see, in that order.
    const committed = await db.query<{ message_key: string; event_id: string; event_type: string }>(
      `SELECT message_key, event_id, event_type FROM users_api.outbox
        WHERE topic = 'posts' AND message_key IN (SELECT id::text FROM users_api.posts WHERE author_id = $1)
        ORDER BY id`,
      [author.userId],
    );
    const keys = new Set(committed.rows.map((row) => row.message_key));
    await waitFor(
      'every post event published',
      async () =>
        (
          await db.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM users_api.outbox WHERE topic = 'posts' AND published_at IS NULL`,
          )
        ).rows[0].n === 0,
      { timeoutMs: 90_000, intervalMs: 250 },
    );
    const messages = await readTopic('posts', await topicEnds('posts', posts), posts);
    const seen = new Set<string>();
    const consumed = new Map<string, string[]>();
    for (const message of messages) {
      const offset = BigInt(message.offset);
      if (offset < (from.get(message.partition) ?? 0n) || !message.key || !keys.has(message.key)) continue;
      // As a consumer's inbox does: a re-sent event (same id) is skipped.
      if (seen.has(message.headers.ce_id)) continue;
      seen.add(message.headers.ce_id);
      consumed.set(message.key, [...(consumed.get(message.key) ?? []), message.headers.ce_id]);
    }
    const expected = new Map<string, string[]>();
    for (const row of committed.rows)
      expected.set(row.message_key, [...(expected.get(row.message_key) ?? []), row.event_id]);
    const outOfOrder = [...expected].filter(([key, ids]) => JSON.stringify(consumed.get(key)) !== JSON.stringify(ids));
    const followUps = committed.rows.filter((row) => row.event_type === 'post.updated.v1').length;
    rows.push({
      scenario: `cluster: relay SIGKILLed ${restarts}× around created → updated of a key`,
      created: committed.rows.length,
      published: seen.size,
      emails: 0,
      duplicates: 0,
      deadLetters: 0,
      lost: committed.rows.length - seen.size,
      note:
        `${keys.size} keys, ${followUps} follow-ups, ${outOfOrder.length} out of order, ` +
        `${messages.filter((m) => m.key && keys.has(m.key)).length - seen.size} re-sent (skipped by id)`,
    });
    expect(restarts).toBe(6);
    expect(seen.size).toBe(committed.rows.length);
    expect(keys.size).toBeGreaterThanOrEqual(30);
    expect(followUps).toBeGreaterThanOrEqual(30);
    expect(outOfOrder).toEqual([]);
  });
});
