import { ConsumerObserver, ConsumerTally } from './stats';

describe('ConsumerTally', () => {
  it('counts each outcome and reports it to the observer with the group and handler time', () => {
    const seen: unknown[][] = [];
    const observer: ConsumerObserver = { message: (...args) => seen.push(args) };
    const tally = new ConsumerTally('email-service', observer);
    tally.outcome('email.requested.v1', 'handled', 0.5);
    tally.outcome('email.requested.v1', 'duplicate');
    tally.outcome('(invalid)', 'dead-lettered');
    tally.outcome('(invalid)', 'dropped');
    expect(tally.snapshot()).toMatchObject({ handled: 1, duplicates: 1, deadLettered: 1, dropped: 1, retried: 0 });
    expect(seen).toEqual([
      ['email-service', 'email.requested.v1', 'handled', 0.5],
      ['email-service', 'email.requested.v1', 'duplicate', undefined],
      ['email-service', '(invalid)', 'dead-lettered', undefined],
      ['email-service', '(invalid)', 'dropped', undefined],
    ]);
  });

  it('a snapshot is a copy: later counts do not change it', () => {
    const tally = new ConsumerTally('g');
    const before = tally.snapshot();
    tally.outcome('x', 'retried');
    expect(before.retried).toBe(0);
    expect(tally.snapshot().retried).toBe(1);
  });
});
