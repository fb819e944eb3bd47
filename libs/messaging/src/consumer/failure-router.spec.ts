import type { KafkaMessage } from 'kafkajs';
import { FailureHeaders } from '../failure-headers';
import type { EventProducer, OutgoingRecord } from '../producer';
import { isRecordRefused } from '../kafka-errors';
import { FailureRouter, STUB_VALUE_BYTES, stubOf } from './failure-router';

const tooLarge = () =>
  Object.assign(new Error('The request included a message larger than the max message size'), {
    type: 'MESSAGE_TOO_LARGE',
  });
const unreachable = () =>
  Object.assign(new Error('Connection error: ECONNREFUSED'), { name: 'KafkaJSConnectionError' });

/** A producer that answers each send by the rule given, and remembers what it was asked to send. */
function producer(answer: (record: OutgoingRecord, compress: boolean) => Error | undefined) {
  const sent: { record: OutgoingRecord; compress: boolean; ok: boolean }[] = [];
  const fake = {
    send: (records: OutgoingRecord[], options: { compress?: boolean } = {}) => {
      const error = answer(records[0], options.compress ?? false);
      sent.push({ record: records[0], compress: options.compress ?? false, ok: !error });
      return error ? Promise.reject(error) : Promise.resolve();
    },
  } as unknown as EventProducer;
  return { fake, sent };
}

const message = (bytes = 10): KafkaMessage => ({
  key: Buffer.from('user-1'),
  value: Buffer.alloc(bytes, 'a'),
  headers: { ce_id: 'e-1' },
  offset: '7',
  timestamp: '0',
  attributes: 0,
});
const failure = {
  origin: { topic: 'emails', partition: 2, offset: '7', timestamp: '0' },
  attempts: 1,
  firstFailedAt: 1,
};
const log = () => ({
  lines: [] as string[],
  error(m: string) {
    this.lines.push(m);
  },
  warn(m: string) {
    this.lines.push(m);
  },
});

describe('FailureRouter', () => {
  it('puts a copy on the retry topic with the failure headers and the due time', async () => {
    const { fake, sent } = producer(() => undefined);
    const router = new FailureRouter('email-service', () => fake, log());
    expect(await router.retry(message(), failure, new Error('SMTP 451'), 5000)).toBe('retried');
    expect(sent).toHaveLength(1);
    expect(sent[0].record).toMatchObject({ topic: 'email-service.retry', key: 'user-1' });
    expect(sent[0].record.headers).toMatchObject({ ce_id: 'e-1', [FailureHeaders.RetryAt]: '5000' });
  });

  it('a copy refused for its size is sent again compressed', async () => {
    const { fake, sent } = producer((_record, compress) => (compress ? undefined : tooLarge()));
    const router = new FailureRouter('g', () => fake, log());
    expect(await router.deadLetter(message(), failure, new Error('bad'), 'invalid-message')).toBe('dead-lettered');
    expect(sent.map((s) => [s.compress, s.ok])).toEqual([
      [false, false],
      [true, true],
    ]);
    expect(sent[1].record.value).toEqual(message().value);
  });

  it('a dead letter refused whole and compressed goes as a stub with its value cut and its size', async () => {
    const { fake, sent } = producer((record) =>
      (record.value?.length ?? 0) > STUB_VALUE_BYTES ? tooLarge() : undefined,
    );
    const lines = log();
    const router = new FailureRouter('g', () => fake, lines);
    expect(await router.deadLetter(message(3_000_000), failure, new Error('bad'), 'invalid-message')).toBe(
      'dead-lettered',
    );
    const stub = sent[2].record;
    expect(stub.value?.length).toBe(STUB_VALUE_BYTES);
    expect(stub.headers).toMatchObject({
      [FailureHeaders.ValueCut]: '3000000',
      [FailureHeaders.OriginalTopic]: 'emails',
      [FailureHeaders.OriginalOffset]: '7',
      ce_id: 'e-1',
    });
    expect(lines.lines.join('\n')).toMatch(/emails\[2\]@7 → g\.dlt as a stub/);
  });

  it('a retry the broker takes in no form goes to the dead-letter topic as retry-refused', async () => {
    const { fake, sent } = producer((record, compress) =>
      record.topic === 'g.retry' || !compress ? tooLarge() : undefined,
    );
    const router = new FailureRouter('g', () => fake, log());
    expect(await router.retry(message(), failure, new Error('x'), 1)).toBe('dead-lettered');
    const last = sent[sent.length - 1].record;
    expect(last.topic).toBe('g.dlt');
    expect(last.headers?.[FailureHeaders.Reason]).toBe('retry-refused');
    // Never a stub on the retry topic: a cut value could never be handled.
    expect(sent.filter((s) => s.record.topic === 'g.retry').every((s) => s.record.value?.length === 10)).toBe(true);
  });

  it('refused in every form, the message is dropped with a line that names it', async () => {
    const { fake } = producer(() => tooLarge());
    const lines = log();
    const router = new FailureRouter('g', () => fake, lines);
    expect(await router.deadLetter(message(), failure, new Error('x'), 'invalid-message')).toBe('dropped');
    expect(lines.lines.join('\n')).toMatch(/emails\[2\]@7 DROPPED: .*whole, compressed and as a stub/);
  });

  it('any other failure is thrown, so the message is fetched again: nothing is dropped while the broker is away', async () => {
    const { fake, sent } = producer(() => unreachable());
    const router = new FailureRouter('g', () => fake, log());
    await expect(router.deadLetter(message(), failure, new Error('x'), 'invalid-message')).rejects.toThrow(
      'ECONNREFUSED',
    );
    expect(sent).toHaveLength(1);
  });

  it('only size and record refusals count, not authorization', () => {
    expect(isRecordRefused(tooLarge())).toBe(true);
    expect(isRecordRefused({ type: 'TOPIC_AUTHORIZATION_FAILED' })).toBe(false);
    expect(isRecordRefused({ cause: { type: 'RECORD_LIST_TOO_LARGE' } })).toBe(true);
  });

  it('a stub leaves out own headers that are too large, and says how many', () => {
    const big = { ...message(), headers: { a: 'x'.repeat(9000), b: 'y' } } as unknown as KafkaMessage;
    const stub = stubOf(big, 'g.dlt', { [FailureHeaders.ErrorMessage]: 'bad' }, tooLarge());
    expect(stub.headers).not.toHaveProperty('a');
    expect(stub.headers?.[FailureHeaders.HeadersCut]).toBe('2');
    expect(stub.headers?.[FailureHeaders.ErrorMessage]).toMatch(/^bad \(set aside as a stub: .*max message size\)$/);
  });
});
