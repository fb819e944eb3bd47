import { InvalidEventError } from '@app/contracts';
import { backoffDelay } from './backoff';
import { classifyError, PermanentError, RetriableError } from './errors';
import {
  FailureHeaders,
  failureHeaders,
  ownHeaders,
  readRetryState,
  retryTopicOf,
  deadLetterTopicOf,
  safeErrorMessage,
  localFirstFailedAt,
} from './failure-headers';

const origin = { topic: 'emails', partition: 2, offset: '41', timestamp: '1764000000000' };

describe('failure headers', () => {
  it('names the retry and dead-letter topics after the consumer group', () => {
    expect(retryTopicOf('email-service')).toBe('email-service.retry');
    expect(deadLetterTopicOf('email-service')).toBe('email-service.dlt');
  });

  it('round-trips the retry state through headers', () => {
    const headers = {
      ...failureHeaders({ origin, consumerGroup: 'g', attempts: 3, firstFailedAt: 1000, error: new Error('x') }),
      [FailureHeaders.RetryAt]: '5000',
    };
    expect(readRetryState(headers)).toEqual({ origin, attempts: 3, firstFailedAt: 1000, retryAt: 5000, waits: 0 });
  });

  it('counts the retry deadline by this clock: elapsed time back from now, else a first failure not in the future', () => {
    const state = { origin, attempts: 1, firstFailedAt: 9_000_000, retryAt: 0, waits: 0 };
    expect(localFirstFailedAt({ ...state, elapsedMs: 4000 }, 1_000_000)).toBe(996_000);
    expect(localFirstFailedAt(state, 1_000_000)).toBe(1_000_000);
    expect(localFirstFailedAt({ ...state, firstFailedAt: 5 }, 1_000_000)).toBe(5);
    expect(
      readRetryState({
        ...failureHeaders({ origin, consumerGroup: 'g', attempts: 1, firstFailedAt: 1, error: 'x' }),
        [FailureHeaders.RetryAt]: '9',
        [FailureHeaders.Elapsed]: '8',
      }),
    ).toMatchObject({ elapsedMs: 8 });
  });

  it('carries the waits that used up no attempt', () => {
    const headers = {
      ...failureHeaders({ origin, consumerGroup: 'g', attempts: 0, firstFailedAt: 1000, error: 'x', waits: 4 }),
      [FailureHeaders.RetryAt]: '5000',
    };
    expect(readRetryState(headers)).toMatchObject({ attempts: 0, waits: 4 });
    expect(readRetryState({ ...headers, [FailureHeaders.Waits]: 'many' })).toMatchObject({ waits: 0 });
  });

  it.each([
    ['no headers', {}],
    ['a non-numeric attempt count', { [FailureHeaders.Attempts]: 'three' }],
  ])('gives no retry state for %s', (name, extra) => {
    const headers = {
      ...failureHeaders({ origin, consumerGroup: 'g', attempts: 1, firstFailedAt: 1, error: 'e' }),
      [FailureHeaders.RetryAt]: '1',
      ...extra,
    };
    expect(readRetryState(name === 'no headers' ? {} : headers)).toBeUndefined();
  });

  it('records the error class and a one-line message with credentials masked, no stack', () => {
    const error = new RetriableError('connect to smtp://bob:hunter2@mail.example.com failed\n    at Socket.connect');
    const headers = failureHeaders({ origin, consumerGroup: 'g', attempts: 1, firstFailedAt: 1, error });
    expect(headers[FailureHeaders.ErrorClass]).toBe('RetriableError');
    expect(headers[FailureHeaders.ErrorMessage]).toBe(
      'connect to smtp://bob:***@mail.example.com failed at Socket.connect',
    );
    expect(safeErrorMessage(new Error('x'.repeat(2000)))).toHaveLength(500);
  });

  it('keeps the message’s own headers and drops those of an earlier failure', () => {
    expect(ownHeaders({ ce_id: 'a', [FailureHeaders.Attempts]: '2', trace: ['t1', 't2'] })).toEqual({
      ce_id: 'a',
      trace: 't1',
    });
  });
});

describe('error classification', () => {
  it('is by type: invalid events and permanent errors are permanent, anything else retriable', () => {
    expect(classifyError(new InvalidEventError('malformed-json', 'x'))).toBe('permanent');
    expect(classifyError(new PermanentError('x'))).toBe('permanent');
    expect(classifyError(new RetriableError('x'))).toBe('retriable');
    expect(classifyError(new Error('permanent failure'))).toBe('retriable');
    expect(classifyError('a string')).toBe('retriable');
  });
});

describe('backoff', () => {
  const policy = { initialMs: 100, maxMs: 1000, multiplier: 2 };
  it('grows exponentially within [half, all] of the step, capped', () => {
    expect(backoffDelay(policy, 1, () => 0)).toBe(50);
    expect(backoffDelay(policy, 1, () => 1)).toBe(100);
    expect(backoffDelay(policy, 3, () => 1)).toBe(400);
    expect(backoffDelay(policy, 10, () => 1)).toBe(1000);
    expect(backoffDelay(policy, 10, () => 0)).toBe(500);
  });
});
