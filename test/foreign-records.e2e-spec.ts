import { randomBytes, randomUUID } from 'node:crypto';
import { CompressionTypes, Producer } from 'kafkajs';
import { ALL_TOPICS } from '@app/contracts';
import { deadLetterTopicOf, ensureTopics, FailureHeaders } from '@app/messaging';
import { testKafka } from './support/broker';
import { ChildApp } from './support/child-app';
import { FaultRow, printFaultTable, tally } from './support/fault-table';
import { EmailEvents, readTopic, startGroupAtEnd, topicEnds, waitForDrained } from './support/kafka';
import { SmtpCatcher } from './support/smtp';
import { waitFor } from './support/wait';

/**
 * Records another producer writes to `emails` that the consumer can neither handle nor copy as they are: values
 * that a client compressed and that are far over the broker's message size once uncompressed (the broker checks
 * the compressed batch, so the original fits), and an uncompressed value within a few hundred bytes of the limit
 * (its copy plus the failure headers is over it). Each must be set aside in a form the broker takes — compressed, or
 * as a stub — and every partition must move on: emails requested after them are all sent.
 */
const rows: FaultRow[] = [];

describe('records from another producer that no copy can hold as they are', () => {
  const smtp = new SmtpCatcher();
  const events = new EmailEvents();
  let foreign: Producer;
  let child: ChildApp | undefined;

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    await smtp.start();
    foreign = testKafka('foreign-producer').producer();
    await foreign.connect();
  });

  afterAll(async () => {
    await child?.stop('SIGKILL').catch(() => undefined);
    await foreign?.disconnect();
    await events.close();
    await smtp.stop();
    printFaultTable('Foreign records', rows);
  });

  it('gzip-compressed 3 MB values and a value at the size limit: set aside, every partition moves on', async () => {
    const group = `foreign-${randomUUID().slice(0, 8)}`;
    await startGroupAtEnd(group, 'emails');
    child = new ChildApp('email-service', group, { SMTP_URL: smtp.url, EMAIL_CONSUMER_GROUP: group });
    await child.start(`consuming as group ${group}`);

    // Six keys, so every partition of `emails` gets one; 3 MB of text each, a few KB once gzipped.
    const big = Array.from({ length: 6 }, (_, i) => ({
      key: `foreign-${i}-${randomUUID()}`,
      value: JSON.stringify({ note: 'not an event', filler: 'x'.repeat(3 * 1024 * 1024), i }),
    }));
    await foreign.send({ topic: 'emails', acks: -1, compression: CompressionTypes.GZIP, messages: big });
    // Random bytes do not compress: 300 bytes under the broker's default limit (1,048,588 bytes a batch).
    const edge = { key: `edge-${randomUUID()}`, value: randomBytes(1_048_588 - 300) };
    await foreign.send({ topic: 'emails', acks: -1, messages: [edge] });

    const after = await events.publish(12, `after-foreign-${randomUUID().slice(0, 6)}`);
    const expected = after.map((record) => record.headers.ce_id);
    await waitFor(
      'the 12 emails requested after the foreign records',
      () => tally(smtp.received, expected).emails === 12,
      {
        timeoutMs: 60_000,
      },
    );
    await waitForDrained(group, ['emails'], 60_000);

    const dlt = deadLetterTopicOf(group);
    const letters = await readTopic(dlt, await topicEnds(dlt));
    const whole = letters.filter((l) => big.some((b) => b.key === l.key));
    const stubs = letters.filter((l) => l.key === edge.key);
    rows.push({
      scenario: 'foreign gzip 3 MB ×6 + 1 MB-300 B raw, then 12 valid',
      created: 12,
      published: 12,
      ...tally(smtp.received, expected),
      deadLetters: letters.length,
      note: `${whole.length} kept whole (compressed), ${stubs.length} stub`,
    });
    expect(tally(smtp.received, expected)).toEqual({ emails: 12, duplicates: 0, lost: 0 });
    // The 3 MB values fit compressed: kept whole on the dead-letter topic, with the reason and the origin.
    expect(whole).toHaveLength(6);
    for (const letter of whole) {
      expect(letter.value?.length).toBeGreaterThan(3 * 1024 * 1024);
      expect(letter.headers[FailureHeaders.Reason]).toBe('invalid-message');
      expect(letter.headers[FailureHeaders.OriginalTopic]).toBe('emails');
    }
    // The random value fits in no fuller form: a stub naming its size and origin.
    expect(stubs).toHaveLength(1);
    expect(stubs[0].headers[FailureHeaders.ValueCut]).toBe(String(edge.value.length));
    expect(stubs[0].headers[FailureHeaders.OriginalOffset]).toMatch(/^\d+$/);
    expect(child.printed).not.toMatch(/fetching it again/);
  });
});
