import { randomUUID } from 'node:crypto';
import { ALL_TOPICS } from '@app/contracts';
import { ensureTopics, retryTopicOf } from '@app/messaging';
import { startBroker, stopBroker, testKafka } from './support/broker';
import { ChildApp } from './support/child-app';
import { FaultRow, printFaultTable, tally } from './support/fault-table';
import { EmailEvents, startGroupAtEnd, waitForDrained } from './support/kafka';
import { SmtpCatcher } from './support/smtp';
import { waitFor } from './support/wait';

/**
 * The consumer runtime while the broker is away, as it happens: kafkajs crashes its consumer and restarts it, and
 * between the two it refuses pause() and resume(); the stall check replaces a consumer that cannot fetch, while
 * kafkajs may be restarting the old one. email-service runs as a child process against the suite's broker, which
 * is stopped and started again.
 */
const rows: FaultRow[] = [];

describe('consumer runtime under a broker outage', () => {
  const smtp = new SmtpCatcher();
  const events = new EmailEvents();
  const children: ChildApp[] = [];

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    await smtp.start();
  });

  afterEach(async () => {
    for (const child of children.splice(0)) await child.stop('SIGKILL').catch(() => undefined);
    await startBroker();
  });

  afterAll(async () => {
    await events.close();
    await smtp.stop();
    printFaultTable('Consumer runtime under a broker outage', rows);
  });

  async function emailService(
    label: string,
    overrides: Record<string, string>,
  ): Promise<{ group: string; child: ChildApp }> {
    const group = `outage-${label}-${randomUUID().slice(0, 8)}`;
    await startGroupAtEnd(group, 'emails');
    const child = new ChildApp('email-service', group, {
      SMTP_URL: smtp.url,
      EMAIL_CONSUMER_GROUP: group,
      ...overrides,
    });
    children.push(child);
    await child.start(`consuming as group ${group}`);
    return { group, child };
  }

  it('a retry paused when the broker stops, the consumer replaced meanwhile: the resume comes before the new one runs; the process stays up', async () => {
    // One refusal, then a retry due 20–40 s later: long enough for the stall check to replace the consumer that
    // cannot fetch, and for the resume to fall while the new one still tries to connect.
    const { group, child } = await emailService('paused', {
      CONSUMER_RETRY_INITIAL_MS: '40000',
      CONSUMER_RETRY_MAX_MS: '40000',
      CONSUMER_STALL_TIMEOUT_MS: '4000',
    });
    smtp.failNext(1, 451);
    const [record] = await events.publish(1, `paused-${randomUUID().slice(0, 6)}`);
    const scheduled = await waitFor('the retry to be scheduled', () => /retry in (\d+) ms/.exec(child.printed));
    const dueAt = Date.now() + Number(scheduled[1]);
    // The retry topic's head is fetched and its partition paused until the due time (readiness lists it).
    const url = /listening on (http:\/\/\S+)/.exec(child.printed)?.[1];
    await waitFor('the retry partition to be paused', async () => {
      const ready = await fetch(`${url}/health/ready`).then((r) => r.text());
      return ready.includes(`"${retryTopicOf(group)}[`);
    });
    await stopBroker();
    await waitFor('the consumer to be replaced', () => child.printed.includes('consumer stalled'), {
      timeoutMs: 60_000,
    });
    // The resume is due while the broker is still away; the process must still run a while after it.
    await waitFor('the retry due time to pass', () => Date.now() > dueAt + 5000 || !child.running, {
      timeoutMs: 60_000,
    });
    expect({ running: child.running, exitCode: child.exitCode }).toEqual({ running: true, exitCode: null });
    await startBroker();
    await waitFor('the email after the outage', () => tally(smtp.received, [record.headers.ce_id]).emails === 1, {
      timeoutMs: 120_000,
    });
    await waitForDrained(group, ['emails', retryTopicOf(group)], 90_000);
    const counts = tally(smtp.received, [record.headers.ce_id]);
    rows.push({
      scenario: 'retry paused, broker down past its due time',
      created: 1,
      published: 1,
      ...counts,
      deadLetters: 0,
      note: 'process stayed up through the resume',
    });
    expect(counts).toEqual({ emails: 1, duplicates: 0, lost: 0 });
  });
});
