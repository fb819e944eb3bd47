import { randomUUID } from 'node:crypto';
import { ALL_TOPICS } from '@app/contracts';
import { DeadLetters, ensureTopics, retryTopicOf } from '@app/messaging';
import { testKafka } from './support/broker';
import { ChildApp } from './support/child-app';
import { FaultRow, printFaultTable, tally } from './support/fault-table';
import { EmailEvents, startGroupAtEnd, waitForDrained } from './support/kafka';
import { SmtpCatcher } from './support/smtp';
import { TcpProxy } from './support/tcp-proxy';
import { waitFor } from './support/wait';

/**
 * The SMTP dialogue runs inside the inbox transaction. These faults stretch it past DATABASE_IDLE_TRANSACTION_TIMEOUT_MS
 * — a server that answers each line just inside SMTP_TIMEOUT_MS, a replica frozen (SIGSTOP) mid-dialogue — and count
 * the messages the SMTP server accepted per event id (Message-ID): never more than one.
 */
const rows: FaultRow[] = [];
const IDLE_TRANSACTION_MS = 3100;

describe('fault suite: the SMTP window', () => {
  const smtp = new SmtpCatcher();
  const events = new EmailEvents();
  const children: ChildApp[] = [];
  const proxies: TcpProxy[] = [];

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    await smtp.start();
  });

  afterEach(async () => {
    for (const child of children.splice(0)) await child.stop('SIGKILL').catch(() => undefined);
    for (const proxy of proxies.splice(0)) await proxy.stop();
  });

  afterAll(async () => {
    await events.close();
    await smtp.stop();
    printFaultTable('Fault suite summary (SMTP window)', rows);
  });

  async function groupAtEnd(label: string): Promise<string> {
    const name = `smtp-${label}-${randomUUID().slice(0, 8)}`;
    await startGroupAtEnd(name, 'emails');
    return name;
  }

  async function replica(name: string, label: string, overrides: Record<string, string>): Promise<ChildApp> {
    const child = new ChildApp('email-service', `${name}-${label}`, { EMAIL_CONSUMER_GROUP: name, ...overrides });
    children.push(child);
    await child.start(`consuming as group ${name}`);
    return child;
  }

  const deadLetterCount = async (group: string) => (await new DeadLetters(testKafka(), group).list()).length;
  const drained = (name: string) => waitForDrained(name, ['emails', retryTopicOf(name)]);

  it('a server answering each line just inside SMTP_TIMEOUT_MS, past the idle-transaction timeout: sent once, handled', async () => {
    const name = await groupAtEnd('slow-lines');
    const proxy = await new TcpProxy(smtp.port).start();
    proxies.push(proxy);
    // 800 ms per line never trips the 1 s socket timeout; a dialogue of 5 to 12 lines outlasts the 3.1 s idle timeout.
    proxy.holdServerLines(800);
    await replica(name, 'a', {
      SMTP_URL: `smtp://127.0.0.1:${proxy.port}`,
      SMTP_TIMEOUT_MS: '1000',
      SMTP_SEND_DEADLINE_MS: '30000',
      DATABASE_IDLE_TRANSACTION_TIMEOUT_MS: String(IDLE_TRANSACTION_MS),
      CONSUMER_MAX_ATTEMPTS: '3',
    });
    const started = Date.now();
    const [record] = await events.publish(1, `slow-${randomUUID().slice(0, 6)}`);
    const id = record.headers.ce_id;
    await waitFor('the email', () => tally(smtp.received, [id]).emails === 1, { timeoutMs: 60_000 });
    const sentMs = Date.now() - started;
    await drained(name);
    const counts = tally(smtp.received, [id]);
    const deadLetters = await deadLetterCount(name);
    rows.push({
      scenario: 'server answers each line after 800 ms',
      created: 1,
      published: 1,
      ...counts,
      deadLetters,
      note: `accepted after ${sentMs} ms (idle-transaction timeout ${IDLE_TRANSACTION_MS} ms)`,
    });
    expect(sentMs).toBeGreaterThan(IDLE_TRANSACTION_MS);
    expect(counts).toEqual({ emails: 1, duplicates: 0, lost: 0 });
    expect(deadLetters).toBe(0);
  });

  it('a replica frozen mid-dialogue past the idle-transaction timeout, thawed after another sent the email: no second', async () => {
    const name = await groupAtEnd('frozen-dialogue');
    const settings = {
      SMTP_URL: smtp.url,
      // Longer than the freeze: the thawed replica's dialogue goes on where it stopped, nothing times it out.
      SMTP_TIMEOUT_MS: '30000',
      SMTP_SEND_DEADLINE_MS: '60000',
      DATABASE_IDLE_TRANSACTION_TIMEOUT_MS: String(IDLE_TRANSACTION_MS),
      CONSUMER_SESSION_TIMEOUT_MS: '6000',
      INBOX_LOCK_TIMEOUT_MS: '1000',
    };
    const frozen = await replica(name, 'a', settings);
    const hold = smtp.holdNextRecipient();
    const [record] = await events.publish(1, `frozen-${randomUUID().slice(0, 6)}`);
    const id = record.headers.ce_id;
    // RCPT TO arrived: the replica has inserted the inbox row and waits on the server's reply when it freezes.
    await waitFor('the frozen replica at RCPT TO', () => hold.reached());
    frozen.signal('SIGSTOP');
    const frozenAt = Date.now();
    // The replies (RCPT accepted, DATA go ahead) wait in the frozen replica's socket.
    hold.release();
    await replica(name, 'b', settings);
    await waitFor('the email, sent by the other replica', () => tally(smtp.received, [id]).emails === 1, {
      timeoutMs: 60_000,
    });
    const frozenMs = Date.now() - frozenAt;
    frozen.signal('SIGCONT');
    await waitFor('the thawed replica to give the event up', () =>
      frozen.printed.split('\n').some((line) => line.includes(id) && line.includes('failed')),
    );
    await drained(name);
    const counts = tally(smtp.received, [id]);
    rows.push({
      scenario: 'replica frozen mid-dialogue, thawed',
      created: 1,
      published: 1,
      ...counts,
      deadLetters: await deadLetterCount(name),
      note: `frozen ${frozenMs} ms (idle-transaction timeout ${IDLE_TRANSACTION_MS} ms)`,
    });
    expect(frozenMs).toBeGreaterThan(IDLE_TRANSACTION_MS);
    expect(counts).toEqual({ emails: 1, duplicates: 0, lost: 0 });
  });
});
