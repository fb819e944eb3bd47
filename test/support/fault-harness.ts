import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { ALL_TOPICS } from '@app/contracts';
import { ensureDatabase } from '@app/database';
import { DeadLetters, ensureTopics, retryTopicOf } from '@app/messaging';
import type { RunningApp } from '@app/runtime';
import { bootEmailService, bootUsersApi } from './apps';
import { testKafka } from './broker';
import { ChildApp } from './child-app';
import { TEST_DATABASE_URL } from './env';
import { FaultRow, printFaultTable } from './fault-table';
import { EmailEvents, readTopic, startGroupAtEnd, topicEnds, waitForDrained } from './kafka';
import { emailEventIds, publishedCount } from './outbox-queries';
import { SmtpCatcher } from './smtp';

const execute = promisify(execFile);
const root = join(__dirname, '..', '..');

export interface Registration {
  status: number;
  id?: string;
  /** How long the 201 (or the refusal) took. */
  ms: number;
  email: string;
}

/**
 * What the fault suites share: one SMTP server, a database client, an event publisher and the summary table; apps
 * started through it are stopped after each test, so a test that failed half-way leaves no consumer behind to mail
 * the next test's events (its own groups) and turn one failure into many. Call it at the top of a `describe`.
 */
export function faultHarness(options: { prefix: string; title: string }) {
  const rows: FaultRow[] = [];
  const smtp = new SmtpCatcher();
  const db = new Client({ connectionString: TEST_DATABASE_URL });
  const events = new EmailEvents();
  const consumers: RunningApp[] = [];
  const apis: INestApplication[] = [];
  const children: ChildApp[] = [];

  const stopAll = async () => {
    for (const child of children.splice(0)) await child.stop('SIGKILL').catch(() => undefined);
    for (const consumer of consumers.splice(0)) await consumer.app.close().catch(() => undefined);
    for (const api of apis.splice(0)) await api.close().catch(() => undefined);
  };

  beforeAll(async () => {
    // Scenarios read topic offsets and query the database before any app has created them when a suite runs first.
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    await ensureDatabase(TEST_DATABASE_URL);
    await smtp.start();
    await db.connect();
  });
  afterEach(stopAll);
  afterAll(async () => {
    await stopAll();
    await events.close();
    await smtp.stop();
    await db.end();
    printFaultTable(options.title, rows);
  });

  /** A unique consumer group name for one scenario. */
  const group = (label: string) => `${options.prefix}-${label}-${randomUUID().slice(0, 8)}`;

  const harness = {
    rows,
    smtp,
    db,
    events,
    /** Child processes to be SIGKILLed after the test, should it not stop them itself. */
    children,
    group,

    /** A new consumer group whose offsets start at the current end of `emails`. */
    async groupAtEnd(label: string): Promise<string> {
      const name = group(label);
      await startGroupAtEnd(name, 'emails');
      return name;
    },

    /** The group has committed everything on `emails` and on its retry topic: no retry is pending. */
    drained: (name: string, timeoutMs?: number) => waitForDrained(name, ['emails', retryTopicOf(name)], timeoutMs),

    /** email-service in this process, mailing the suite's SMTP server as group `name`. */
    async emailService(name: string, overrides: Record<string, string> = {}): Promise<RunningApp> {
      const consumer = await bootEmailService({ SMTP_URL: smtp.url, EMAIL_CONSUMER_GROUP: name, ...overrides });
      consumers.push(consumer);
      return consumer;
    },

    async closeConsumer(consumer: RunningApp): Promise<void> {
      consumers.splice(consumers.indexOf(consumer), 1);
      await consumer.app.close();
    },

    async usersApi(overrides: Record<string, string> = {}): Promise<{ app: INestApplication; url: string }> {
      const api = await bootUsersApi(overrides);
      apis.push(api.app);
      return api;
    },

    async closeApi(app: INestApplication): Promise<void> {
      apis.splice(apis.indexOf(app), 1);
      await app.close();
    },

    /** One registration against users-api at `url`, timed; the answer as it came. */
    async register(url: string, prefix: string): Promise<Registration> {
      const name = `${prefix}-${randomUUID().slice(0, 8)}`;
      const email = `${name}@example.com`;
      const started = Date.now();
      const response = await fetch(`${url}/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, username: name, password: 'correct horse battery staple' }),
      });
      const ms = Date.now() - started;
      const body = (await response.json()) as { id?: string };
      return { status: response.status, id: body.id, ms, email };
    },

    /** A registration that must succeed: the new user's id. */
    async registered(url: string, prefix: string): Promise<string> {
      const result = await harness.register(url, prefix);
      expect(result.status).toBe(201);
      return result.id as string;
    },

    emailEventIds: (userIds: string[]) => emailEventIds(db, userIds),
    publishedCount: (userIds: string[]) => publishedCount(db, userIds),

    async deadLetterCount(consumerGroup: string): Promise<number> {
      return (await new DeadLetters(testKafka(), consumerGroup).list()).length;
    },

    /** How often each of these event ids is on `emails` past the given offsets. */
    async onTopic(before: Map<number, bigint>, ids: string[]): Promise<number> {
      const messages = await readTopic('emails', await topicEnds('emails'));
      return messages.filter(
        (m) => BigInt(m.offset) >= (before.get(m.partition) ?? 0n) && ids.includes(m.headers.ce_id),
      ).length;
    },

    /** Runs one of the project's command-line tools (a TypeScript file) from the repository root. */
    cli(script: string, args: string[], env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
      return execute(process.execPath, ['-r', '@swc-node/register', script, ...args], {
        cwd: root,
        env: { ...process.env, ...env },
      });
    },
  };
  return harness;
}
