import { InvalidEventError } from '@app/contracts';
import { PermanentError, RetriableError, UnavailableError } from './errors';
import { decideFailure } from './failure-decision';
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
    expect(decide(1, new RetriableError('SMTP 451'))).toEqual({ kind: 'retry', at: now + 1000, attempts: 1, waits: 0 });
    expect(decide(3, new RetriableError('SMTP 451'))).toEqual({ kind: 'retry', at: now + 4000, attempts: 3, waits: 0 });
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

  it('an unavailable dependency retries without using up an attempt, even past maxAttempts', () => {
    const down = new UnavailableError('redis unreachable');
    expect(decide(1, down)).toEqual({ kind: 'retry', at: now + 1000, attempts: 0, waits: 1 });
    expect(decide(4, down)).toEqual({ kind: 'retry', at: now + 1000, attempts: 3, waits: 1 });
  });

  it('waits back off by their own count, not by attempts', () => {
    const down = new UnavailableError('redis unreachable');
    const after = (waits: number) =>
      decideFailure({ attempt: 1, error: down, firstFailedAt: now, now, waits }, policy, top);
    expect(after(2)).toEqual({ kind: 'retry', at: now + 4000, attempts: 0, waits: 3 });
    expect(after(10)).toMatchObject({ at: now + 8000 });
  });

  it('a known lease end is waited for, with up to 10% jitter, within the longest backoff', () => {
    const held = (ms: number) => new UnavailableError('claimed', { retryAfterMs: ms });
    const low = () => 0;
    expect(decideFailure({ attempt: 1, error: held(5000), firstFailedAt: now, now }, policy, low)).toMatchObject({
      at: now + 5000,
    });
    expect(decide(1, held(5000))).toMatchObject({ at: now + 5500 });
    expect(decide(1, held(60_000))).toMatchObject({ at: now + 8000 });
    // A lease about to end: no busy loop below half the first backoff.
    expect(decideFailure({ attempt: 1, error: held(0), firstFailedAt: now, now }, policy, low)).toMatchObject({
      at: now + 500,
    });
  });

  it('the deadline still bounds an event that stays unavailable', () => {
    expect(decide(1, new UnavailableError('held'), now - 60_000)).toEqual({
      kind: 'dead-letter',
      reason: 'deadline-exceeded',
      attempts: 0,
    });
  });
});
