import type { KafkaMessage } from 'kafkajs';
import { createEnvelope } from '@app/contracts';
import { PermanentError, RetriableError, UnavailableError } from '../errors';
import { FailureHeaders } from '../failure-headers';
import { NoInbox } from '../inbox';
import { PartitionScheduler } from '../partition-scheduler';
import type { FailureRouter } from './failure-router';
import { EventHandlerFn, MessagePipeline } from './message-pipeline';
import { ConsumerTally } from './stats';

const policy = { initialMs: 1000, maxMs: 8000, multiplier: 2, maxAttempts: 3, deadlineMs: 60_000 };

function event() {
  const envelope = createEnvelope({
    type: 'email.requested.v1',
    source: 'spec',
    data: { to: 'a@example.com', template: 'welcome', data: { username: 'a' }, userId: crypto.randomUUID() },
  });
  return Buffer.from(JSON.stringify(envelope));
}

const message = (value: Buffer | null, headers: Record<string, string> = {}): KafkaMessage => ({
  key: Buffer.from('k'),
  value,
  headers,
  offset: '3',
  timestamp: '0',
  attributes: 0,
});

/** Retry headers of a message on the retry topic, with the fields given. */
const retryHeaders = (fields: Record<string, string>): Record<string, string> => ({
  [FailureHeaders.OriginalTopic]: 'emails',
  [FailureHeaders.OriginalPartition]: '0',
  [FailureHeaders.OriginalOffset]: '3',
  [FailureHeaders.Attempts]: '1',
  [FailureHeaders.FirstFailedAt]: String(Date.now()),
  [FailureHeaders.RetryAt]: '0',
  ...fields,
});

function setUp(handler?: EventHandlerFn, perInstance = false) {
  const set: { to: string; attempts: number; waits?: number; reason?: string; at?: number }[] = [];
  const router = {
    retryTopic: 'g.retry',
    deadLetterTopic: 'g.dlt',
    retry: (_m: KafkaMessage, f: { attempts: number; waits?: number }, _e: unknown, at: number) => {
      set.push({ to: 'retry', attempts: f.attempts, waits: f.waits, at });
      return Promise.resolve('retried');
    },
    deadLetter: (_m: KafkaMessage, f: { attempts: number }, _e: unknown, reason: string) => {
      set.push({ to: 'dlt', attempts: f.attempts, reason });
      return Promise.resolve('dead-lettered');
    },
  } as unknown as FailureRouter;
  const tally = new ConsumerTally('g');
  const scheduler = new PartitionScheduler(() => undefined, policy);
  const pipeline = new MessagePipeline(
    { consumerGroup: 'g', groupId: 'g', perInstance, retry: policy, heartbeatIntervalMs: 60_000 },
    {
      handlerOf: (type) => (type === 'email.requested.v1' ? handler : undefined),
      inbox: () => new NoInbox(),
      scheduler,
      router,
      tally,
      shutdown: new AbortController().signal,
      log: { log: () => undefined, warn: () => undefined, debug: () => undefined },
    },
  );
  const handle = (m: KafkaMessage, topic = 'emails') => pipeline.handle(topic, 0, m, () => Promise.resolve());
  return { handle, set, tally };
}

describe('MessagePipeline', () => {
  it('a handled event is done and counted', async () => {
    const { handle, tally } = setUp(() => Promise.resolve());
    expect(await handle(message(event()))).toEqual({ kind: 'done' });
    expect(tally.stats.handled).toBe(1);
  });

  it('bytes that are no event go to the dead-letter topic on the first attempt, counted as (invalid)', async () => {
    const { handle, set, tally } = setUp(() => Promise.resolve());
    expect(await handle(message(Buffer.from('not json')))).toEqual({ kind: 'done' });
    expect(set).toEqual([{ to: 'dlt', attempts: 1, reason: 'invalid-message' }]);
    expect(tally.stats.deadLettered).toBe(1);
  });

  it('an event this group does not handle is skipped', async () => {
    const { handle, tally } = setUp(undefined);
    await handle(message(event()));
    expect(tally.stats.skipped).toBe(1);
  });

  it('a retriable failure goes to the retry topic with its attempt; a permanent one to the dead-letter topic', async () => {
    const retriable = setUp(() => Promise.reject(new RetriableError('451')));
    await retriable.handle(message(event()));
    expect(retriable.set).toMatchObject([{ to: 'retry', attempts: 1, waits: 0 }]);
    const permanent = setUp(() => Promise.reject(new PermanentError('no such mailbox')));
    await permanent.handle(message(event()));
    expect(permanent.set).toEqual([{ to: 'dlt', attempts: 1, reason: 'permanent-error' }]);
  });

  it('an unavailable dependency retries with no attempt used, its waits counted on from the headers', async () => {
    const { handle, set } = setUp(() => Promise.reject(new UnavailableError('redis down')));
    const retry = retryHeaders({ [FailureHeaders.Attempts]: '2', [FailureHeaders.Waits]: '4' });
    await handle(message(event(), retry), 'g.retry');
    expect(set).toMatchObject([{ to: 'retry', attempts: 2, waits: 5 }]);
  });

  it('a retry whose due time is ahead waits; one without retry headers is dead-lettered', async () => {
    const { handle, set } = setUp(() => Promise.resolve());
    const due = Date.now() + 5000;
    const headers = retryHeaders({ [FailureHeaders.RetryAt]: String(due) });
    const outcome = await handle(message(event(), headers), 'g.retry');
    expect(outcome.kind).toBe('wait');
    await handle(message(event()), 'g.retry');
    expect(set).toEqual([{ to: 'dlt', attempts: 1, reason: 'invalid-message' }]);
  });

  it('the retry deadline counts the elapsed time in the headers, not another host’s first-failure clock', async () => {
    const { handle, set } = setUp(() => Promise.reject(new RetriableError('451')));
    // A clock an hour ahead wrote this; only 59.5 s of the 60 s deadline are used up.
    const headers = retryHeaders({
      [FailureHeaders.FirstFailedAt]: String(Date.now() + 3_600_000),
      [FailureHeaders.Elapsed]: '59500',
    });
    await handle(message(event(), headers), 'g.retry');
    expect(set).toEqual([{ to: 'dlt', attempts: 2, reason: 'deadline-exceeded' }]);
  });

  it('per-instance groups pass a failure over: no retry, no dead letter', async () => {
    const { handle, set, tally } = setUp(() => Promise.reject(new Error('boom')), true);
    await handle(message(event()));
    expect(set).toEqual([]);
    expect(tally.stats.failed).toBe(1);
  });
});
