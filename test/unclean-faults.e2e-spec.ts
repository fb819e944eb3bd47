import { randomUUID } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import { DataSource } from 'typeorm';
import { kafkaToolConfigSchema, loadConfig } from '@app/config';
import {
  createKafka,
  DeadLetters,
  ensureTopics,
  EventProducer,
  FailureHeaders,
  lastOffsets,
  retryTopicOf,
  toRecord,
} from '@app/messaging';
import { TypeOrmInbox } from '@app/inbox';
import { OutboxRelay } from '@app/outbox';
import { testKafka } from './support/broker';
import { ChildApp } from './support/child-app';
import { appEnv, TEST_DATABASE_URL, TEST_KAFKA_BROKERS } from './support/env';
import { faultHarness } from './support/fault-harness';
import { tally } from './support/fault-table';
import { KafkaProxy } from './support/kafka-proxy';
import { readTopic, topicEnds } from './support/kafka';
import { TcpProxy } from './support/tcp-proxy';
import { waitFor } from './support/wait';

/**
 * Faults as they happen in production rather than tidily: a broker that wrote but whose answer never came back, a
 * host frozen with its connections open (SIGSTOP), rows and messages that can never succeed. Each test fails
 * without the fix it guards; the summary table counts lost and doubled emails.
 */
const brokerPort = Number(TEST_KAFKA_BROKERS.split(',')[0].split(':')[1]);

describe('fault suite: unclean faults', () => {
  const h = faultHarness({ prefix: 'unclean', title: 'Fault suite summary (unclean faults)' });
  const { rows, smtp, db, events, children, groupAtEnd, drained, emailService, closeConsumer, usersApi, closeApi } = h;
  const { emailEventIds, publishedCount, onTopic } = h;
  const register = h.registered;
  const outboxCli = (...args: string[]) =>
    h.cli('libs/outbox/src/outbox.cli.ts', args, { DATABASE_URL: TEST_DATABASE_URL });

  it('1a. a batch the broker appended in part: the next send is written, not taken for a duplicate', async () => {
    const topic = `producer-sequence-${randomUUID().slice(0, 8)}`;
    await ensureTopics(testKafka(), [topic], { partitions: 3, replicationFactor: 1 });
    const producer = new EventProducer(createKafka(loadConfig('test', kafkaToolConfigSchema, appEnv()), 'e2e-seq'));
    const partitionOf = Partitioners.DefaultPartitioner();
    const metadata = [0, 1, 2].map((partitionId) => ({
      partitionId,
      partitionErrorCode: 0,
      leader: 1,
      replicas: [1],
      isr: [1],
      offlineReplicas: [],
    }));
    const keyFor = (partition: number) => {
      for (;;) {
        const key = randomUUID();
        if (partitionOf({ topic, partitionMetadata: metadata, message: { key, value: null } }) === partition)
          return key;
      }
    };
    const keys = [keyFor(0), keyFor(1), keyFor(2)];
    const batch = (label: string, values: (string | null)[] = []) =>
      keys.map((key, i) => ({ topic, key, value: values[i] ?? `${label}-${i}` }));
    try {
      await producer.send(batch('a'));
      // Partition 1 refuses a record over the broker's message.max.bytes; partitions 0 and 2 append theirs.
      await expect(producer.send(batch('b', [null, 'x'.repeat(1_200_000)]))).rejects.toThrow(/larger than the max/);
      await producer.send(batch('c'));
    } finally {
      await producer.disconnect();
    }
    const values = (await readTopic(topic, await topicEnds(topic))).map((m) => m.value);
    expect(values).toEqual(expect.arrayContaining(['a-0', 'a-1', 'a-2', 'b-0', 'b-2', 'c-0', 'c-1', 'c-2']));
    expect(values).toHaveLength(8);
    rows.push({
      scenario: '1a partial append, then a new batch',
      created: 3,
      published: values.filter((v) => v?.startsWith('c-')).length,
      emails: 0,
      duplicates: 0,
      deadLetters: 0,
      lost: 3 - values.filter((v) => v?.startsWith('c-')).length,
      note: `producer generation ${producer.generation}: replaced after the refused send`,
    });
  });

  it('1b+4. a row the broker never takes (2 MB) is parked; every other event still goes out, in order per key', async () => {
    const name = await groupAtEnd('too-large');
    const consumer = await emailService(name);
    const api = await usersApi();
    const key = randomUUID();
    const follower = toRecord(
      'email.requested.v1',
      { to: `held-${key.slice(0, 8)}@example.com`, template: 'welcome', data: { username: 'held' }, userId: key },
      { key, source: 'e2e-tests' },
    );
    const { rows: inserted } = await db.query<{ id: string }>(
      `INSERT INTO users_api.outbox (event_id, event_type, topic, message_key, value, headers)
       VALUES ($1, 'email.requested.v1', 'emails', $2, repeat('x', 2000000), '{}'),
              ($3, 'email.requested.v1', 'emails', $2, $4, $5)
       RETURNING id`,
      [randomUUID(), key, follower.headers.ce_id, follower.value, follower.headers],
    );
    const [bigId, followerId] = inserted.map((row) => row.id);
    const userIds: string[] = [];
    for (let i = 0; i < 5; i++) userIds.push(await register(api.url, 'u1b'));
    const expected = await emailEventIds(userIds);
    await waitFor('5 emails past the bad row', () => tally(smtp.received, expected).emails === 5, {
      timeoutMs: 60_000,
    });
    const [parked] = (
      await db.query<{ parked_at: Date | null; last_error: string; attempts: number }>(
        'SELECT parked_at, last_error, attempts FROM users_api.outbox WHERE id = $1',
        [bigId],
      )
    ).rows;
    expect(parked.parked_at).not.toBeNull();
    expect(parked.last_error).toMatch(/larger than the max/);
    // The later event of the same key waits behind the parked row: per-key order.
    const held = await db.query('SELECT 1 FROM users_api.outbox WHERE id = $1 AND published_at IS NULL', [followerId]);
    expect(held.rowCount).toBe(1);
    const health = (await (await fetch(`${api.url}/health`)).json()) as {
      status: string;
      relay: { parkedRows: number };
    };
    expect(health).toMatchObject({ status: 'degraded', relay: { parkedRows: 1 } });

    const listed = await outboxCli('list');
    const line = listed.stdout.split('\n').find((l) => l.startsWith(`#${bigId} `));
    expect(line).toContain('1 waiting behind');
    await outboxCli('drop', '--id', bigId, '--yes');
    await waitFor(
      'the held event once the parked row is dropped',
      () => tally(smtp.received, [follower.headers.ce_id]).emails === 1,
    );
    await drained(name);
    const counts = tally(smtp.received, [...expected, follower.headers.ce_id]);
    rows.push({
      scenario: '4 one 2 MB outbox row among registrations',
      created: 6,
      published: (await publishedCount(userIds)) / 2 + 1,
      ...counts,
      deadLetters: 0,
      note: `row parked after ${parked.attempts} attempt(s); its key's next event held, sent after drop`,
    });
    expect(counts).toEqual({ emails: 6, duplicates: 0, lost: 0 });
    await closeApi(api.app);
    await closeConsumer(consumer);
  });

  it('4b. a row for a topic the broker does not have is parked after OUTBOX_MAX_ATTEMPTS rounds; the rest flows', async () => {
    const name = await groupAtEnd('unknown-topic');
    await emailService(name);
    const api = await usersApi({ OUTBOX_MAX_ATTEMPTS: '2' });
    const { rows: inserted } = await db.query<{ id: string }>(
      `INSERT INTO users_api.outbox (event_id, event_type, topic, message_key, value, headers)
       VALUES ($1, 'email.requested.v1', 'no-such-topic', 'k', '{}', '{}') RETURNING id`,
      [randomUUID()],
    );
    const userIds: string[] = [];
    // Attempts count only in rounds where the broker took other rows: keep registering until the row is parked.
    await waitFor(
      'the unknown-topic row parked',
      async () => {
        userIds.push(await register(api.url, 'u4b'));
        const { rows: found } = await db.query<{ parked: boolean; attempts: number }>(
          'SELECT parked_at IS NOT NULL AS parked, attempts FROM users_api.outbox WHERE id = $1',
          [inserted[0].id],
        );
        return found[0].parked && found[0];
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    const expected = await emailEventIds(userIds);
    await waitFor(`${userIds.length} emails`, () => tally(smtp.received, expected).emails === userIds.length, {
      timeoutMs: 60_000,
    });
    await drained(name);
    const counts = tally(smtp.received, expected);
    rows.push({
      scenario: '4b a row for an unknown topic',
      created: userIds.length,
      published: (await publishedCount(userIds)) / 2,
      ...counts,
      deadLetters: 0,
      note: `parked after 2 rounds with other rows published; ${userIds.length} registrations meanwhile`,
    });
    expect(counts).toEqual({ emails: userIds.length, duplicates: 0, lost: 0 });
  });

  it('1c. the broker writes but its answers are lost: the relay recovers with a new producer, each email once', async () => {
    const proxy = new KafkaProxy({ listenPort: brokerPort + 3, targetPort: brokerPort + 2 });
    await proxy.start();
    try {
      const name = await groupAtEnd('lost-acks');
      const consumer = await emailService(name);
      const api = await usersApi({
        KAFKA_BROKERS: `127.0.0.1:${brokerPort + 3}`,
        KAFKA_REQUEST_TIMEOUT_MS: '1500',
        OUTBOX_MAX_BACKOFF_MS: '500',
      });
      const relay = api.app.get(OutboxRelay);
      const before = await topicEnds('emails');
      const userIds = [await register(api.url, 'u1c'), await register(api.url, 'u1c')];
      await waitFor('the first emails', async () => (await publishedCount(userIds)) === 4);
      proxy.dropResponses();
      for (let i = 0; i < 3; i++) userIds.push(await register(api.url, 'u1c'));
      await waitFor(
        'a send whose answer was lost',
        () => proxy.stats.droppedResponses > 0 && relay.status().failingSince !== null,
        { timeoutMs: 60_000 },
      );
      // More rows join the next batch: reusing the old sequence numbers now fails for good.
      for (let i = 0; i < 3; i++) userIds.push(await register(api.url, 'u1c'));
      proxy.heal();
      const expected = await emailEventIds(userIds);
      await waitFor('every row published', async () => (await publishedCount(userIds)) === userIds.length * 2, {
        timeoutMs: 60_000,
      });
      await waitFor('8 emails', () => tally(smtp.received, expected).emails === 8, { timeoutMs: 60_000 });
      await drained(name);
      const counts = tally(smtp.received, expected);
      const copies = await onTopic(before, expected);
      rows.push({
        scenario: '1 acks lost after the broker wrote',
        created: 8,
        published: copies,
        ...counts,
        deadLetters: 0,
        note: `${proxy.stats.droppedResponses} answers dropped; ${copies - 8} events written twice, skipped by the inbox`,
      });
      expect(counts).toEqual({ emails: 8, duplicates: 0, lost: 0 });
      await closeApi(api.app);
      await closeConsumer(consumer);
    } finally {
      await proxy.stop();
    }
  });

  it("1d. a consumer's fetch answers are lost: the stalled consumer is replaced and the email is sent", async () => {
    const proxy = new KafkaProxy({ listenPort: brokerPort + 3, targetPort: brokerPort + 2 });
    await proxy.start();
    try {
      const name = await groupAtEnd('lost-fetches');
      // A request timeout far longer than the test: only the stall check can get the consumer going again.
      const consumer = await emailService(name, {
        KAFKA_BROKERS: `127.0.0.1:${brokerPort + 3}`,
        KAFKA_REQUEST_TIMEOUT_MS: '300000',
        CONSUMER_STALL_TIMEOUT_MS: '4000',
        // The stuck member never leaves the group: its replacement joins once the coordinator drops it.
        CONSUMER_SESSION_TIMEOUT_MS: '10000',
      });
      const first = await events.publish(1, 'fetch-ok');
      await waitFor('the first email', () => tally(smtp.received, [first[0].headers.ce_id]).emails === 1);
      proxy.dropResponses([1]); // Fetch: the broker answers, the answer never arrives
      await waitFor('a fetch answer swallowed', () => proxy.stats.droppedResponses > 0, { timeoutMs: 10_000 });
      const held = await events.publish(1, 'fetch-lost');
      const healedAt = Date.now();
      proxy.heal();
      await waitFor(
        'the email published while fetches were lost',
        () => tally(smtp.received, [held[0].headers.ce_id]).emails === 1,
        {
          timeoutMs: 45_000,
        },
      );
      const { stalls } = consumer.server.stats;
      rows.push({
        scenario: '1d fetch answers lost (consumer stalled)',
        created: 2,
        published: 2,
        ...tally(smtp.received, [first[0].headers.ce_id, held[0].headers.ce_id]),
        deadLetters: 0,
        note: `${proxy.stats.droppedResponses} fetch answers dropped; ${stalls} stall(s), consumer replaced; sent ${Date.now() - healedAt} ms after the heal`,
      });
      expect(stalls).toBeGreaterThanOrEqual(1);
      await closeConsumer(consumer);
    } finally {
      await proxy.stop();
    }
  });

  it('1e. a consumer keeps fetching yet its partitions stop delivering: the lag check replaces it and the email is sent', async () => {
    const name = await groupAtEnd('silent-partitions');
    const consumer = await emailService(name, { CONSUMER_STALL_TIMEOUT_MS: '4000' });
    const first = await events.publish(1, 'partition-ok');
    await waitFor('the first email', () => tally(smtp.received, [first[0].headers.ce_id]).emails === 1);
    // What kafkajs does when its metadata names a leader it no longer fetches from (seen after a cluster lost and
    // regained its quorum): fetch requests go on, nothing more comes from the partitions. Done behind the server's
    // back, so its own pause bookkeeping knows nothing of it.
    const kafkajs = consumer.server.unwrap<{ pause(topics: { topic: string }[]): void }>();
    kafkajs.pause([{ topic: 'emails' }]);
    const fetchesBefore = consumer.server.stats.fetches;
    const held = await events.publish(1, 'partition-silent');
    const publishedAt = Date.now();
    await waitFor(
      'the email published while the partitions were silent',
      () => tally(smtp.received, [held[0].headers.ce_id]).emails === 1,
      { timeoutMs: 45_000 },
    );
    const { stalls, fetches } = consumer.server.stats;
    rows.push({
      scenario: '1e partitions silent while fetches go on',
      created: 2,
      published: 2,
      ...tally(smtp.received, [first[0].headers.ce_id, held[0].headers.ce_id]),
      deadLetters: 0,
      note: `${fetches - fetchesBefore} fetches meanwhile; ${stalls} stall(s), consumer replaced; sent ${Date.now() - publishedAt} ms after publishing`,
    });
    expect(stalls).toBeGreaterThanOrEqual(1);
    await closeConsumer(consumer);
  });

  it('2. the relay leader freezes (SIGSTOP): the standby takes over in bounded time; the thawed one stands down', async () => {
    const name = await groupAtEnd('frozen-leader');
    const consumer = await emailService(name);
    const env = { OUTBOX_LEADER_TIMEOUT_MS: '3000', LOG_LEVEL: 'log' };
    const replicas = [0, 1].map((i) => new ChildApp('users-api', `${name}-users-api-${i}`, env));
    children.push(...replicas);
    for (const replica of replicas) await replica.start('listening on');
    const urlOf = (replica: ChildApp) => /listening on (\S+)/.exec(replica.printed)?.[1] as string;
    const isLeader = async (replica: ChildApp) =>
      ((await (await fetch(`${urlOf(replica)}/health`)).json()) as { relay: { leader: boolean } }).relay.leader;
    const leader = await waitFor('a relay leader', async () => {
      for (const replica of replicas) if (await isLeader(replica)) return replica;
      return undefined;
    });
    const standby = replicas.find((r) => r !== leader) as ChildApp;
    const before = await topicEnds('emails');
    leader.signal('SIGSTOP');
    const frozenAt = Date.now();
    const userIds: string[] = [];
    for (let i = 0; i < 5; i++) userIds.push(await register(urlOf(standby), 'u2'));
    let expected = await emailEventIds(userIds);
    await waitFor('emails through the standby', () => tally(smtp.received, expected).emails === 5, {
      timeoutMs: 30_000,
    });
    const takeoverMs = Date.now() - frozenAt;
    leader.signal('SIGCONT');
    await waitFor('the old leader to stand down', async () => !(await isLeader(leader)), { timeoutMs: 15_000 });
    for (let i = 0; i < 5; i++) userIds.push(await register(urlOf(leader), 'u2'));
    expected = await emailEventIds(userIds);
    await waitFor('10 emails', () => tally(smtp.received, expected).emails === 10, { timeoutMs: 30_000 });
    await drained(name);
    const counts = tally(smtp.received, expected);
    const copies = await onTopic(before, expected);
    rows.push({
      scenario: '2 relay leader frozen (SIGSTOP)',
      created: 10,
      published: copies,
      ...counts,
      deadLetters: 0,
      note: `standby published ${takeoverMs} ms after the freeze (leader timeout 3000 ms)`,
    });
    expect(counts).toEqual({ emails: 10, duplicates: 0, lost: 0 });
    // A relay that lost its lock published nothing: every event is on the topic exactly once.
    expect(copies).toBe(10);
    expect(leader.printed).toContain('lock session lost');
    for (const replica of replicas) await replica.stop('SIGTERM');
    await closeConsumer(consumer);
  });

  it('2b. a relay cut off from its lock session publishes nothing until it holds the lock again', async () => {
    const database = new URL(TEST_DATABASE_URL);
    const cutoff = await new TcpProxy(Number(database.port || 5432)).start();
    try {
      const name = await groupAtEnd('fenced');
      await emailService(name);
      database.port = String(cutoff.port);
      // Only the lock session goes through the proxy; the relay polls every 100 ms, so it tries to send at once.
      const api = await usersApi({
        OUTBOX_LOCK_DATABASE_URL: database.toString(),
        OUTBOX_LEADER_TIMEOUT_MS: '3000',
        OUTBOX_IDLE_POLL_MS: '100',
      });
      const relay = api.app.get(OutboxRelay);
      const first = [await register(api.url, 'u2b')];
      await waitFor('the relay publishing', async () => (await publishedCount(first)) === 2);
      cutoff.blackhole(true);
      const cut: string[] = [];
      for (let i = 0; i < 3; i++) cut.push(await register(api.url, 'u2b'));
      await waitFor('the relay to stand down', () => !relay.status().leader, { timeoutMs: 15_000 });
      const publishedWhileCut = await publishedCount(cut);
      cutoff.blackhole(false);
      await waitFor('the rows, once it holds the lock again', async () => (await publishedCount(cut)) === 6, {
        timeoutMs: 30_000,
      });
      const expected = await emailEventIds([...first, ...cut]);
      await waitFor('4 emails', () => tally(smtp.received, expected).emails === 4);
      await drained(name);
      const counts = tally(smtp.received, expected);
      rows.push({
        scenario: '2b lock session cut off (silent network)',
        created: 4,
        published: (await publishedCount([...first, ...cut])) / 2,
        ...counts,
        deadLetters: 0,
        note: `${publishedWhileCut} rows published while the relay could not reach its lock session`,
      });
      // Fencing: a send goes out only right after the lock session answered.
      expect(publishedWhileCut).toBe(0);
      expect(counts).toEqual({ emails: 4, duplicates: 0, lost: 0 });
    } finally {
      await cutoff.stop();
    }
  });

  it('3. a consumer freezes (SIGSTOP) inside its inbox transaction: the others keep flowing; the event is retried', async () => {
    const name = await groupAtEnd('frozen-consumer');
    const frozen = new ChildApp('email-service', name, {
      SMTP_URL: smtp.url,
      EMAIL_CONSUMER_GROUP: name,
      CONSUMER_SESSION_TIMEOUT_MS: '6000',
      // Long enough that the other replica meets the orphaned transaction, short enough to end within the test.
      DATABASE_IDLE_TRANSACTION_TIMEOUT_MS: '40000',
      SMTP_TIMEOUT_MS: '13000',
    });
    children.push(frozen);
    await frozen.start(`consuming as group ${name}`);
    // The mail server holds its reply: the consumer is inside its inbox transaction, waiting, when it freezes.
    smtp.delayNext(Infinity);
    const [slow] = await events.publish(1, `u3-slow-${randomUUID().slice(0, 6)}`);
    await waitFor('the slow message at the mail server', () => smtp.receiving > 0);
    frozen.signal('SIGSTOP');
    const frozenAt = Date.now();
    const other = await emailService(name, { INBOX_LOCK_TIMEOUT_MS: '1000', CONSUMER_SESSION_TIMEOUT_MS: '6000' });
    const records = await events.publish(30, `u3-${randomUUID().slice(0, 6)}`);
    const expected = records.map((r) => r.headers.ce_id);
    // Well before PostgreSQL ends the frozen transaction (40 s): the partition did not wait for it.
    await waitFor('30 emails while a consumer is frozen', () => tally(smtp.received, expected).emails === 30, {
      timeoutMs: 30_000,
    });
    const flowedMs = Date.now() - frozenAt;
    await waitFor(
      'the frozen consumer’s event, retried',
      () => tally(smtp.received, [slow.headers.ce_id]).emails >= 1,
      {
        timeoutMs: 90_000,
      },
    );
    const tookMs = Date.now() - frozenAt;
    await drained(name);
    const counts = tally(smtp.received, [...expected, slow.headers.ce_id]);
    rows.push({
      scenario: '3 consumer frozen mid-transaction',
      created: 31,
      published: 31,
      ...counts,
      deadLetters: 0,
      note: `30 others sent within ${flowedMs} ms; the held one after ${tookMs} ms, ${other.server.stats.retried} retries`,
    });
    expect(counts).toEqual({ emails: 31, duplicates: 0, lost: 0 });
    // The held event went through the retry topic instead of blocking its partition.
    expect(other.server.stats.retried).toBeGreaterThanOrEqual(1);
    await frozen.stop('SIGKILL');
    await closeConsumer(other);
  });

  it('5. retries due hours ahead (clock skew) or beyond any timer: each waits at most the longest backoff', async () => {
    const name = await groupAtEnd('retry-at');
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    const consumer = await emailService(name);
    try {
      const records = Array.from({ length: 2 }, (_, i) => {
        const userId = randomUUID();
        return toRecord(
          'email.requested.v1',
          { to: `u5-${i}-${userId.slice(0, 6)}@example.com`, template: 'welcome', data: { username: 'u5' }, userId },
          { key: userId, source: 'e2e-tests' },
        );
      });
      const now = Date.now();
      const retryAt = [String(now + 3_600_000), '1000000000000000'];
      const producer = testKafka().producer();
      await producer.connect();
      await producer.send({
        topic: retryTopicOf(name),
        messages: records.map((record, i) => ({
          key: record.key,
          value: record.value,
          headers: {
            ...record.headers,
            [FailureHeaders.OriginalTopic]: 'emails',
            [FailureHeaders.OriginalPartition]: '0',
            [FailureHeaders.OriginalOffset]: '0',
            [FailureHeaders.Attempts]: '1',
            [FailureHeaders.FirstFailedAt]: String(now),
            [FailureHeaders.RetryAt]: retryAt[i],
          },
        })),
      });
      await producer.disconnect();
      const expected = records.map((r) => r.headers.ce_id);
      // CONSUMER_RETRY_MAX_MS is 2000 in the test environment.
      await waitFor('both retries', () => tally(smtp.received, expected).emails === 2, { timeoutMs: 20_000 });
      const tookMs = Date.now() - now;
      await drained(name);
      const counts = tally(smtp.received, expected);
      rows.push({
        scenario: '5 x-retry-at 1 h ahead and 10^15',
        created: 2,
        published: 2,
        ...counts,
        deadLetters: 0,
        note: `both sent within ${tookMs} ms; no timer overflow`,
      });
      expect(counts).toEqual({ emails: 2, duplicates: 0, lost: 0 });
      expect(warnings).not.toContain('TimeoutOverflowWarning');
    } finally {
      process.off('warning', onWarning);
      await closeConsumer(consumer);
    }
  });

  it('6. a consumer crash kafkajs does not restart from: the runner restarts it and consumption goes on', async () => {
    const name = await groupAtEnd('crash');
    const consumer = await emailService(name);
    // The server's batch runner (libs/messaging/src/consumer/batch-runner.ts), reached from outside for the fault.
    const runner = (
      consumer.server as unknown as { runtime: { runner: { run: (...args: unknown[]) => Promise<void> } } }
    ).runtime.runner;
    // What a non-retriable error escaping a batch (a fenced member, an authorization change) does to kafkajs.
    jest
      .spyOn(runner, 'run')
      .mockRejectedValueOnce(Object.assign(new Error('injected non-retriable failure'), { retriable: false }));
    const [record] = await events.publish(1, `u6-${randomUUID().slice(0, 6)}`);
    await waitFor('the email after the crash', () => tally(smtp.received, [record.headers.ce_id]).emails === 1, {
      timeoutMs: 30_000,
    });
    await drained(name);
    rows.push({
      scenario: '6 consumer crash without restart',
      created: 1,
      published: 1,
      ...tally(smtp.received, [record.headers.ce_id]),
      deadLetters: 0,
      note: `${consumer.server.stats.crashes} crash(es), state ${consumer.server.consumerStatus().state}`,
    });
    expect(consumer.server.stats.crashes).toBeGreaterThanOrEqual(1);
    expect(consumer.server.consumerStatus().state).toBe('consuming');
    await closeConsumer(consumer);
  });

  it('6. dlq purge deletes only the dead letters that were seen, never one that arrived after the list', async () => {
    const name = await groupAtEnd('purge');
    const consumer = await emailService(name);
    const deadLetters = new DeadLetters(testKafka(), name);
    const key = randomUUID();
    await events.publishRaw([{ key, value: 'not json 1' }]);
    const seen = await waitFor('the first dead letter', async () => {
      const found = await deadLetters.list();
      return found.length === 1 && found;
    });
    await events.publishRaw([{ key, value: 'not json 2' }]);
    await waitFor('the second dead letter', async () => (await deadLetters.list()).length === 2);
    expect(await deadLetters.purge(lastOffsets(seen))).toBe(1);
    const left = await deadLetters.list();
    expect(left.map((l) => l.value?.toString())).toEqual(['not json 2']);
    await closeConsumer(consumer);
  });

  it('6. inbox and outbox are pruned by age; an inbox that would forget before Kafka does fails the boot', async () => {
    await expect(
      emailService(`unclean-retention-${randomUUID().slice(0, 8)}`, { INBOX_RETENTION_HOURS: '24' }),
    ).rejects.toThrow(/INBOX_RETENTION_HOURS=24 is shorter than topic \S+ keeps messages/);
    const name = await groupAtEnd('prune');
    const consumer = await emailService(name);
    const group = `prune-${randomUUID().slice(0, 8)}`;
    const [oldId, newId] = [randomUUID(), randomUUID()];
    await db.query(
      `INSERT INTO email_service.inbox (consumer_group, event_id, event_type, topic, "partition", "offset", processed_at)
       VALUES ($1, $2, 'email.requested.v1', 'emails', 0, 1, now() - interval '800 hours'),
              ($1, $3, 'email.requested.v1', 'emails', 0, 2, now())`,
      [group, oldId, newId],
    );
    expect(await new TypeOrmInbox(consumer.app.get(DataSource)).prune(group, 720)).toBe(1);
    const { rows: left } = await db.query<{ event_id: string }>(
      'SELECT event_id FROM email_service.inbox WHERE consumer_group = $1',
      [group],
    );
    expect(left.map((r) => r.event_id)).toEqual([newId]);
    await closeConsumer(consumer);

    const api = await usersApi({ OUTBOX_RELAY_ENABLED: 'false' });
    const { rows: outbox } = await db.query<{ id: string }>(
      `INSERT INTO users_api.outbox (event_id, event_type, topic, message_key, value, published_at)
       VALUES ($1, 'user.registered.v1', 'users', 'k', '{}', now() - interval '200 hours'),
              ($2, 'user.registered.v1', 'users', 'k', '{}', now() - interval '1 hour')
       RETURNING id`,
      [randomUUID(), randomUUID()],
    );
    expect(await api.app.get(OutboxRelay).prune()).toBeGreaterThanOrEqual(1);
    const { rows: kept } = await db.query<{ id: string }>('SELECT id FROM users_api.outbox WHERE id = ANY($1)', [
      outbox.map((r) => r.id),
    ]);
    expect(kept.map((r) => r.id)).toEqual([outbox[1].id]);
    await closeApi(api.app);
  });
});
