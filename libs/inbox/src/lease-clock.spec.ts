import { claimQueryTimeoutMs, LeaseClock } from './lease-clock';

describe('LeaseClock', () => {
  it('holds a lease counted from when the claim was sent, not from when it answered, less a margin', () => {
    const clock = new LeaseClock(6000, 1000);
    expect(clock.marginMs).toBe(600);
    // The answer came 2.5 s later: the lease still ends 6 s after the send (held as ended 0.6 s before that).
    expect(clock.remainingMs(3500)).toBe(2900);
    expect(clock.expired(6399)).toBe(false);
    expect(clock.expired(6400)).toBe(true);
    expect(clock.remainingMs(9000)).toBe(0);
  });

  it('a confirmed renewal extends the lease to a lease after its own send', () => {
    const clock = new LeaseClock(6000, 0);
    clock.renewed(2000);
    expect(clock.remainingMs(7000)).toBe(400);
    expect(clock.expired(7400)).toBe(true);
  });

  it('a late answer to an older renewal never shortens the lease', () => {
    const clock = new LeaseClock(6000, 0);
    clock.renewed(4000);
    clock.renewed(2000);
    expect(clock.remainingMs(9000)).toBe(400);
  });

  it('renewals that never answer extend nothing: the lease runs out a lease after the last confirmed send', () => {
    const clock = new LeaseClock(3000, 0);
    clock.renewed(1000);
    // Renewals sent at 2000, 3000, 4000 hung; nothing was confirmed after the one sent at 1000.
    expect(clock.expired(3699)).toBe(false);
    expect(clock.expired(3700)).toBe(true);
  });

  it('keeps a margin of a tenth of the lease, at most a second', () => {
    expect(new LeaseClock(1000, 0).marginMs).toBe(100);
    expect(new LeaseClock(600_000, 0).marginMs).toBe(1000);
  });
});

describe('claimQueryTimeoutMs', () => {
  it('is a third of the lease, at most 10 s, unless set', () => {
    expect(claimQueryTimeoutMs(6000)).toBe(2000);
    expect(claimQueryTimeoutMs(1000)).toBe(333);
    expect(claimQueryTimeoutMs(600_000)).toBe(10_000);
    expect(claimQueryTimeoutMs(600_000, 1500)).toBe(1500);
  });
});
