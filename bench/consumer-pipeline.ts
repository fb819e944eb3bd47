/**
 * Figures 3 and 5, the consumer's throughput: messages per second through our consumer runtime — the real
 * `KafkaEventServer` of a `@EventConsumer` class booted by `startApp`, a durable group with its retry and
 * dead-letter topics and the retry policy from the config as the apps have them, every message parsed and validated
 * against its contract before a no-op `@HandleEvent` handler — without an inbox and with the PostgreSQL inbox the
 * apps use (one transaction per message), against raw kafkajs (a no-op `eachBatch`, a commit per batch) and against
 * `@nestjs/microservices`' own `ServerKafka` (Transport.KAFKA, a no-op `@EventPattern` handler).
 *
 * The same N valid `user.registered.v1` envelopes are produced once to `users`: our runtime subscribes to the topic
 * the contract gives the event type, and nothing in the system consumes this one; the bench creates it with 3
 * partitions on a fresh broker. Each consumer then reads the messages in its own new consumer group (started where
 * the bench's messages begin when earlier runs left some on the topic), 3 partitions in parallel, and must commit
 * the end of every partition. The clock runs from a consumer's first delivery to the last message handed to its
 * code; the messages of the first delivery are not counted, so the group join is outside the rate. Raw kafkajs is
 * over in well under a second and reads the topic three times (the median counts); the inbox variant, much slower,
 * reads a prefix within a time limit, and the inbox's own timestamps give the time per message on a partition.
 * Run with `npm run bench -- consumer-pipeline`.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Controller, Module, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, MicroserviceOptions, Transport } from '@nestjs/microservices';
import { Admin, Consumer, Kafka, logLevel, Message, Partitioners, Producer } from 'kafkajs';
import { Client } from 'pg';
import { z } from 'zod';
import { checkKafka, consumerEnv, databaseEnv, httpEnv, inboxEnv, kafkaEnv, loadConfig, logEnv } from '@app/config';
import { topicOf } from '@app/contracts';
import { DatabaseModule } from '@app/database';
import { addInboxPruningIndex, createInboxTable, InboxRecord } from '@app/inbox';
import {
  deadLetterTopicOf,
  ensureTopics,
  EventConsumer,
  HandleEvent,
  KafkaEventServer,
  retryTopicOf,
  toRecord,
  withDeadline,
} from '@app/messaging';
import { defineApp, startApp } from '@app/runtime';
import { MigrationInterface, QueryRunner } from 'typeorm';
import { testKafka } from '../test/support/broker';
import { startGroupAtEnd, waitForDrained } from '../test/support/kafka';
import { waitFor } from '../test/support/wait';
import { benchEnv, DATABASE_URL, KAFKA_BROKERS } from './env';
import { atLeast, Chart, Measurement, runBench, writeFigure } from './lib/results';

/** Messages produced, and read in full by raw kafkajs, our runtime without an inbox and stock Nest. */
const N = Number(process.env.BENCH_PIPELINE_MESSAGES ?? 100_000);
/** The inbox variant reads at most this many of them, and stops after INBOX_SECONDS in any case. */
const INBOX_N = Math.min(N, Number(process.env.BENCH_PIPELINE_INBOX_MESSAGES ?? 10_000));
const INBOX_SECONDS = Number(process.env.BENCH_PIPELINE_INBOX_SECONDS ?? 15);
/** Raw kafkajs is over in well under a second: it reads the messages this many times, each in a new group. */
const RAW_READS = 3;
/** Messages a throw-away raw consumer reads first, untimed, so no variant pays for kafkajs's cold code alone. */
const WARM_UP = Math.min(N, 20_000);
const PARTITIONS = 3;
/** Partitions handled in parallel, by every consumer: CONSUMER_CONCURRENCY's default, which the apps run with. */
const CONCURRENCY = 3;
const EVENT_TYPE = 'user.registered.v1';
const TOPIC = topicOf(EVENT_TYPE);
/** The inbox variant's tables, dropped at the end. */
const SCHEMA = 'bench_consumer_pipeline';
/** The whole run (producing, every variant, cleanup) must end within this; each wait is bounded by what is left. */
const BUDGET_MS = 105_000;
const startedAt = Date.now();
const left = (capMs: number) => Math.max(1000, Math.min(capMs, startedAt + BUDGET_MS - Date.now()));

/**
 * Counts the messages handed to a consumer's code, with when the first and the latest came and how many came with
 * the first (a whole batch for raw kafkajs, one for the others); `done` at `target`.
 */
class Tally {
  count = 0;
  first = 0;
  withFirst = 0;
  latest = 0;
  readonly done: Promise<void>;
  private settle!: { resolve: () => void; reject: (error: Error) => void };

  constructor(readonly target: number) {
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
  }

  seen(messages: number): void {
    const now = performance.now();
    if (this.count === 0) {
      this.first = now;
      this.withFirst = messages;
    }
    this.latest = now;
    this.count += messages;
    if (this.count >= this.target) this.settle.resolve();
  }

  fail(error: Error): void {
    this.settle.reject(error);
  }
}

interface Run {
  messages: number;
  perSecond: number;
}

/** The rate after the first delivery: the messages that came after it, over the time from it to the latest. */
const runOf = ({ count, withFirst, first, latest }: Tally): Run => {
  return { messages: count, perSecond: (count - withFirst) / ((latest - first) / 1000) };
};

/** The config our bench apps load: what every consumer app reads, plus the database and inbox settings. */
const benchSchema = z
  .object({ ...kafkaEnv, ...databaseEnv, ...logEnv, ...consumerEnv, ...inboxEnv, ...httpEnv(0) })
  .superRefine(checkKafka);

class BenchInbox1764000000000 implements MigrationInterface {
  name = 'BenchInbox1764000000000';
  async up(runner: QueryRunner): Promise<void> {
    await createInboxTable(runner, SCHEMA);
    await addInboxPruningIndex(runner, SCHEMA);
  }
  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE "${SCHEMA}".inbox`);
  }
}

/** An app of one `@EventConsumer` class whose no-op handler counts; with the inbox, it owns SCHEMA like an app. */
function pipelineApp(group: string, inbox: 'none' | 'transactional', tally: Tally) {
  @EventConsumer({ group, inbox })
  @Controller()
  class PipelineListener {
    @HandleEvent(EVENT_TYPE)
    handle(): void {
      tally.seen(1);
    }
  }
  @Module({})
  class PipelineModule {}
  const database = DatabaseModule.forApp({
    schema: SCHEMA,
    entities: [InboxRecord],
    migrations: [BenchInbox1764000000000],
    applicationName: 'bench-consumer-pipeline',
  });
  return defineApp({
    name: 'bench-consumer-pipeline',
    schema: benchSchema,
    module: () => ({
      module: PipelineModule,
      imports: inbox === 'transactional' ? [database] : [],
      controllers: [PipelineListener],
    }),
  });
}

/** Stock Nest: a controller with a no-op `@EventPattern(topic)` handler that counts. */
function stockModule(tally: Tally): Type {
  @Controller()
  class StockListener {
    @EventPattern(TOPIC)
    handle(_event: unknown): void {
      tally.seen(1);
    }
  }
  @Module({ controllers: [StockListener] })
  class StockModule {}
  return StockModule;
}

/** The N envelopes, as the outbox writer builds them (`toRecord` validates each payload). */
function envelopes(count: number): Message[] {
  const registeredAt = new Date().toISOString();
  return Array.from({ length: count }, (_, i) => {
    const userId = randomUUID();
    const record = toRecord(
      EVENT_TYPE,
      { userId, email: `user${i}@example.com`, username: `user${i}`, registeredAt },
      { key: userId, source: 'bench', correlationId: `bench-${i}` },
    );
    return { key: record.key, value: record.value, headers: record.headers };
  });
}

async function produce(producer: Producer, messages: Message[]): Promise<void> {
  await producer.connect();
  const chunk = 1000;
  const inFlight = 4;
  let next = 0;
  const worker = async () => {
    while (next < messages.length) {
      const slice = messages.slice(next, next + chunk);
      next += chunk;
      await producer.send({ topic: TOPIC, acks: -1, messages: slice });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

/** Raw kafkajs: a no-op eachBatch; kafkajs resolves the batch and commits after each one (autoCommit). */
async function rawRun(kafka: Kafka, groupId: string, tally: Tally, what: string): Promise<void> {
  const consumer: Consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
  consumer.on(consumer.events.CRASH, ({ payload }) => tally.fail(payload.error));
  try {
    await withDeadline(`${what} joining`, left(30_000), consumer.connect());
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await consumer.run({
      partitionsConsumedConcurrently: CONCURRENCY,
      eachBatch: ({ batch }) => {
        tally.seen(batch.messages.length);
        return Promise.resolve();
      },
    });
    await withDeadline(`${what} reading ${tally.target} messages`, left(30_000), tally.done);
  } finally {
    await withDeadline(`${what} leaving`, 15_000, consumer.disconnect());
  }
}

async function main(): Promise<void> {
  // The last resort (and what keeps the process alive should a call hang with nothing else pending); every wait
  // below has its own, shorter bound and cleans up when it fails.
  setTimeout(
    () => {
      process.stderr.write('bench failed: consumer-pipeline ran past 118 s\n');
      process.exit(1);
    },
    startedAt + 118_000 - Date.now(),
  );

  const kafka = testKafka('bench-consumer-pipeline', KAFKA_BROKERS);
  const admin = kafka.admin();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  const db = new Client({ connectionString: DATABASE_URL });
  const run = randomUUID().slice(0, 8);
  const groups = {
    warmUp: `bench-pipeline-warm-up-${run}`,
    raw: Array.from({ length: RAW_READS }, (_, i) => `bench-pipeline-raw-${i + 1}-${run}`),
    ours: `bench-pipeline-ours-${run}`,
    inbox: `bench-pipeline-inbox-${run}`,
    // ServerKafka appends its postfixId ('-server') to the group id it is given.
    stock: `bench-pipeline-stock-${run}-server`,
  };
  const apps: { close(): Promise<void> }[] = [];
  let dbConnected = false;
  try {
    const setUp = async () => {
      await admin.connect();
      await ensureTopics(kafka, [TOPIC], { partitions: PARTITIONS, replicationFactor: 1 });
      const [topic] = (await admin.fetchTopicMetadata({ topics: [TOPIC] })).topics;
      // Where the bench's messages begin: the start of a fresh topic, or past what earlier benchmarks left there.
      return { metadata: topic, before: await admin.fetchTopicOffsets(TOPIC) };
    };
    const { metadata, before } = await withDeadline(`setting up ${TOPIC}`, left(30_000), setUp());
    const from = before.map(({ partition, high }) => ({ partition, offset: high }));

    const messages = envelopes(N);
    const valueBytes = messages.reduce((sum, m) => sum + Buffer.byteLength(m.value as string), 0) / N;
    await withDeadline(`producing ${N} messages`, left(40_000), produce(producer, messages));
    await producer.disconnect();
    // A new group starts at the earliest offset: only past earlier messages must its start be set (kafkajs joins
    // the group to set it, a few seconds each).
    if (before.some(({ low, high }) => low !== high)) {
      await Promise.all(
        Object.values(groups)
          .flat()
          .map((group) => startGroupAtEnd(group, TOPIC, from)),
      );
    }

    // Untimed: kafkajs's fetch and decode paths, which all three consumers share, compiled before any clock runs.
    await rawRun(kafka, groups.warmUp, new Tally(WARM_UP), 'warm-up');

    const raws: Run[] = [];
    for (const group of groups.raw) {
      const tally = new Tally(N);
      await rawRun(kafka, group, tally, 'raw kafkajs');
      await waitForDrained(group, [TOPIC], left(15_000));
      raws.push(runOf(tally));
    }
    const raw = [...raws].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(RAW_READS / 2)];

    const env = benchEnv({ CONSUMER_CONCURRENCY: String(CONCURRENCY) });

    const oursTally = new Tally(N);
    const ours = await withDeadline(
      'our consumer (no inbox) starting',
      left(30_000),
      startApp(pipelineApp(groups.ours, 'none', oursTally), loadConfig('bench-consumer-pipeline', benchSchema, env)),
    );
    apps.push(ours.app);
    await withDeadline(`our consumer (no inbox) reading ${N} messages`, left(30_000), oursTally.done);
    await waitForDrained(groups.ours, [TOPIC], left(15_000));
    checkClean(ours.server, N, 'our consumer (no inbox)');
    const oursRun = runOf(oursTally);
    await withDeadline('our consumer (no inbox) closing', left(30_000), ours.app.close());
    apps.pop();

    const stockTally = new Tally(N);
    const stock = await NestFactory.createMicroservice<MicroserviceOptions>(stockModule(stockTally), {
      transport: Transport.KAFKA,
      options: {
        client: { clientId: 'bench-consumer-pipeline', brokers: KAFKA_BROKERS.split(','), logLevel: logLevel.ERROR },
        consumer: { groupId: groups.stock.replace(/-server$/, '') },
        subscribe: { fromBeginning: true },
        run: { partitionsConsumedConcurrently: CONCURRENCY },
      },
      logger: ['error'],
    });
    apps.push(stock);
    await withDeadline('stock Nest starting', left(30_000), stock.listen());
    await withDeadline(`stock Nest reading ${N} messages`, left(30_000), stockTally.done);
    await waitForDrained(groups.stock, [TOPIC], left(15_000));
    const stockRun = runOf(stockTally);
    await withDeadline('stock Nest closing', left(30_000), stock.close());
    apps.pop();

    const inboxTally = new Tally(INBOX_N);
    await withDeadline('connecting to PostgreSQL', left(15_000), db.connect());
    dbConnected = true;
    await db.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
    const withInbox = await withDeadline(
      'our consumer (inbox) starting',
      left(30_000),
      startApp(
        pipelineApp(groups.inbox, 'transactional', inboxTally),
        loadConfig('bench-consumer-pipeline', benchSchema, env),
      ),
    );
    apps.push(withInbox.app);
    // At most INBOX_N messages or INBOX_SECONDS after the first one, whichever comes first.
    await waitFor('our consumer (inbox) to handle its first message', () => inboxTally.count > 0, {
      timeoutMs: left(30_000),
      intervalMs: 20,
    });
    let limit: NodeJS.Timeout | undefined;
    await Promise.race([
      inboxTally.done,
      new Promise((resolve) => {
        limit = setTimeout(resolve, Math.max(0, inboxTally.first + INBOX_SECONDS * 1000 - performance.now()));
      }),
    ]);
    clearTimeout(limit);
    const inboxRun = runOf(inboxTally);
    // Closing drains the messages in hand: every handled one has its inbox row afterwards.
    await withDeadline('our consumer (inbox) closing', left(30_000), withInbox.app.close());
    apps.pop();
    checkClean(withInbox.server, inboxRun.messages, 'our consumer (inbox)');
    const inbox = await inboxStats(db, groups.inbox);
    if (inbox.rows < inboxRun.messages) {
      throw new Error(`the inbox holds ${inbox.rows} rows for ${inboxRun.messages} messages handled`);
    }

    report({
      raw,
      raws,
      ours: oursRun,
      inbox: inboxRun,
      stock: stockRun,
      valueBytes,
      partitions: metadata.partitions.length,
      inboxGapMs: inbox.gapMs,
    });
  } finally {
    for (const app of apps.reverse()) await withDeadline('closing an app', 15_000, app.close()).catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await withDeadline('cleaning up', 20_000, cleanUp(admin, Object.values(groups).flat())).catch(() => undefined);
    await withDeadline('leaving Kafka', 10_000, admin.disconnect()).catch(() => undefined);
    if (dbConnected) {
      const dropped = db.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
      await withDeadline('dropping the inbox schema', 10_000, dropped).catch(() => undefined);
      await withDeadline('closing PostgreSQL', 10_000, db.end()).catch(() => undefined);
    }
  }
}

/** Every message went through the handler once: none retried, dead-lettered, skipped, or redelivered by a restart. */
function checkClean(server: KafkaEventServer, handled: number, what: string): void {
  const { stats } = server;
  const problems = [
    stats.handled < handled ? `${stats.handled} handled` : '',
    stats.retried > 0 ? `${stats.retried} retried` : '',
    stats.deadLettered > 0 ? `${stats.deadLettered} dead-lettered` : '',
    stats.skipped > 0 ? `${stats.skipped} skipped` : '',
    stats.crashes > 0 ? `${stats.crashes} crashes` : '',
  ].filter(Boolean);
  if (problems.length > 0) throw new Error(`${what}: ${problems.join(', ')} (expected ${handled} handled)`);
}

/**
 * The inbox's rows of the group, and the median time between two consecutive messages of one partition as the
 * database saw them (`processed_at` is each transaction's start): what one message costs on its partition.
 */
async function inboxStats(db: Client, group: string): Promise<{ rows: number; gapMs: number }> {
  const { rows } = await db.query<{ rows: number; gap_ms: number }>(
    `SELECT count(*)::int AS rows,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) AS gap_ms
       FROM (SELECT extract(epoch FROM processed_at - lag(processed_at) OVER (PARTITION BY "partition" ORDER BY "offset")) * 1000 AS gap
               FROM "${SCHEMA}".inbox WHERE consumer_group = $1) gaps`,
    [group],
  );
  return { rows: rows[0].rows, gapMs: Number(rows[0].gap_ms) };
}

/** The bench's groups, and the retry and dead-letter topics its durable groups created, leave the broker. */
async function cleanUp(admin: Admin, groupIds: string[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const topics = groupIds.flatMap((g) => [retryTopicOf(g), deadLetterTopicOf(g)]).filter((t) => existing.has(t));
  if (topics.length > 0) await withDeadline('deleting the bench topics', 15_000, admin.deleteTopics({ topics }));
  const { groups } = await admin.listGroups();
  const ours = groups.map((g) => g.groupId).filter((id) => groupIds.includes(id));
  if (ours.length > 0) await withDeadline('deleting the bench groups', 15_000, admin.deleteGroups(ours));
}

function report(r: {
  raw: Run;
  raws: Run[];
  ours: Run;
  inbox: Run;
  stock: Run;
  valueBytes: number;
  partitions: number;
  inboxGapMs: number;
}): void {
  const rate = (label: string, run: Run): Measurement[] => [
    { label: `${label}: rate`, value: run.perSecond, unit: 'msg/s' },
    { label: `${label}: messages read`, value: run.messages, unit: 'messages' },
  ];
  const bar = (title: string, values: { consumer: string; msgPerSec: number }[]): Chart => ({
    name: 'rates',
    title,
    values: values.map((v) => ({ ...v, msgPerSec: Math.round(v.msgPerSec) })),
    spec: {
      mark: 'bar',
      encoding: {
        y: { field: 'consumer', type: 'nominal', sort: null, title: null },
        x: { field: 'msgPerSec', type: 'quantitative', title: 'messages/s' },
      },
    },
  });
  const shape = `${r.partitions} partitions, ${Math.round(r.valueBytes)}-byte values, ${CONCURRENCY} partitions handled in parallel`;
  writeFigure(
    {
      id: 'consumer-pipeline',
      figure: 3,
      title: 'Consumer pipeline',
      measurements: [
        ...rate(`raw kafkajs (no-op eachBatch, commit per batch; median of ${RAW_READS} reads)`, r.raw),
        ...rate('ours without inbox (validation, no-op handler, retries armed)', r.ours),
        ...rate('ours with the PostgreSQL inbox', r.inbox),
        { label: 'inbox: median time per message on one partition', value: r.inboxGapMs, unit: 'ms' },
        { label: 'message value (CloudEvents JSON, user.registered.v1)', value: r.valueBytes, unit: 'bytes' },
        { label: 'partitions of the topic', value: r.partitions, unit: 'partitions' },
      ],
      ratios: [
        atLeast('ours without inbox ÷ raw kafkajs', r.ours.perSecond / r.raw.perSecond, 0.5),
        atLeast('ours with inbox ÷ raw kafkajs', r.inbox.perSecond / r.raw.perSecond, 0.1),
      ],
      notes: [
        `Each consumer reads the same ${N} pre-produced messages (${shape}) in its own new group, timed from its ` +
          `first delivery (one message, or raw kafkajs's first batch, not counted) to the last message handled, so ` +
          `the group join is not in it; the inbox variant stops after ${INBOX_N} messages or ${INBOX_SECONDS} s.`,
        `The broker, PostgreSQL and the consumer share the machine's cores, and raw kafkajs is over in under a ` +
          `second (its ${RAW_READS} reads: ${r.raws.map((run) => Math.round(run.perSecond)).join(', ')} msg/s), so ` +
          `rates move by tens of percent between runs.`,
      ],
      charts: [
        bar('Messages per second, one consumer process', [
          { consumer: 'raw kafkajs', msgPerSec: r.raw.perSecond },
          { consumer: 'ours, no inbox', msgPerSec: r.ours.perSecond },
          { consumer: 'ours, PostgreSQL inbox', msgPerSec: r.inbox.perSecond },
        ]),
      ],
    },
    startedAt,
  );
  writeFigure(
    {
      id: 'stock-nest',
      figure: 5,
      title: 'Against stock Nest',
      measurements: [
        ...rate('ours without inbox (validation, no-op handler, retries armed)', r.ours),
        ...rate('stock Nest ServerKafka (no-op @EventPattern)', r.stock),
      ],
      ratios: [atLeast('ours ÷ stock Nest ServerKafka', r.ours.perSecond / r.stock.perSecond, 1.0)],
      notes: [
        `The same ${N} messages (${shape}), each consumer in its own new group, timed from the first message ` +
          `handed to its handler to the last; stock Nest takes each message through eachMessage and its own JSON ` +
          `deserializer, validates nothing, and kafkajs commits after each batch.`,
        `One run on a machine whose cores the broker and the consumer share: rates move by tens of percent between runs.`,
      ],
      charts: [
        bar('Messages per second, one consumer process', [
          { consumer: 'stock Nest ServerKafka', msgPerSec: r.stock.perSecond },
          { consumer: 'ours, no inbox', msgPerSec: r.ours.perSecond },
        ]),
      ],
    },
    startedAt,
  );
}

runBench(main);
