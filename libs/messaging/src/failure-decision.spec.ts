import { InvalidEventError } from '@app/contracts';
import { PermanentError, RetriableError } from './errors';
import { decideFailure } from './failure-decision';
import { InboxBusyError } from './inbox';
import type { RetryPolicy } from './retry-policy';

const policy: RetryPolicy = { initialMs: 1000, maxMs: 8000, multiplier: 2, maxAttempts: 4, deadlineMs: 60_000 };
const now = 1_000_000;
/** Full jitter pinned to its top: attempt n waits exactly min(max, initial·2^(n-1)). */
const top = () => 1;
const decide = (attempt: number, error: unknown, firstFailedAt = now) =>
  decideFailure({ attempt, error, firstFailedAt, now }, policy, top);

describe('decideFailure', () => {
  it('a permanent error or an invalid event goes to the dead-letter topic on the attempt it failed', () => {
    expect(decide(1, new PermanentError('bad address'))).toEqual({
      kind: 'dead-letter',
      reason: 'permanent-error',
      attempts: 1,
    });
    expect(decide(2, new InvalidEventError('invalid-envelope', 'x'))).toMatchObject({ reason: 'permanent-error' });
  });

  it('a retriable error retries after the backoff of its attempt', () => {
    expect(decide(1, new RetriableError('SMTP 451'))).toEqual({ kind: 'retry', at: now + 1000, attempts: 1 });
    expect(decide(3, new RetriableError('SMTP 451'))).toEqual({ kind: 'retry', at: now + 4000, attempts: 3 });
  });

  it('an unknown error counts as retriable: losing work is worse than retrying', () => {
    expect(decide(1, new Error('ECONNRESET'))).toMatchObject({ kind: 'retry' });
    expect(decide(1, 'a string')).toMatchObject({ kind: 'retry' });
  });

  it('the backoff is capped', () => {
    const wide = { ...policy, maxAttempts: 20 };
    expect(decideFailure({ attempt: 10, error: new Error('x'), firstFailedAt: now, now }, wide, top)).toMatchObject({
      at: now + 8000,
    });
  });

  it('the last allowed attempt goes to the dead-letter topic as attempts-exhausted', () => {
    expect(decide(4, new RetriableError('SMTP 451'))).toEqual({
      kind: 'dead-letter',
      reason: 'attempts-exhausted',
      attempts: 4,
    });
  });

  it('a retry that would fall past the deadline after the first failure is dead-lettered instead', () => {
    expect(decide(2, new RetriableError('x'), now - 59_000)).toEqual({
      kind: 'dead-letter',
      reason: 'deadline-exceeded',
      attempts: 2,
    });
    expect(decide(2, new RetriableError('x'), now - 58_000)).toMatchObject({ kind: 'retry' });
  });

  it('an event held by another transaction retries without using up an attempt, even past maxAttempts', () => {
    const busy = new InboxBusyError('held');
    expect(decide(1, busy)).toEqual({ kind: 'retry', at: now + 1000, attempts: 0 });
    expect(decide(4, busy)).toEqual({ kind: 'retry', at: now + 4000, attempts: 3 });
  });

  it('the deadline still bounds an event that stays held', () => {
    expect(decide(1, new InboxBusyError('held'), now - 60_000)).toEqual({
      kind: 'dead-letter',
      reason: 'deadline-exceeded',
      attempts: 0,
    });
  });
});
