import { ClaimHold, ClaimLostError, heldClaim } from './held-claim';

/** The hold's timers with a fake clock: renewals that answer, are refused, fail or never answer. */
describe('ClaimHold', () => {
  let now = 0;
  beforeEach(() => {
    jest.useFakeTimers();
    now = 0;
  });
  afterEach(() => jest.useRealTimers());
  const advance = async (ms: number) => {
    for (let step = 0; step < ms; step += 100) {
      now += 100;
      await jest.advanceTimersByTimeAsync(100);
    }
  };
  const never = () => new Promise<boolean>(() => undefined);

  it('is lost a lease after the last confirmed send when renewals hang, whatever else happens', async () => {
    let answers = 0;
    // The first renewal (sent at 1000) is confirmed; every later one never answers.
    const hold = new ClaimHold(
      'e1',
      1,
      3000,
      0,
      () => (answers++ === 0 ? Promise.resolve(true) : never()),
      () => now,
    );
    let lostAt: number | undefined;
    void hold.start(async () => {
      hold.signal.addEventListener('abort', () => (lostAt = now));
      await new Promise<void>((resolve) => hold.signal.addEventListener('abort', () => resolve()));
    });
    // Confirmed at 1000 + a 3000 ms lease, less its 300 ms margin: lost at 3700.
    await advance(3600);
    expect(hold.signal.aborted).toBe(false);
    expect(hold.remainingMs()).toBe(100);
    await advance(200);
    expect(lostAt).toBe(3700);
    expect(hold.signal.reason).toBeInstanceOf(ClaimLostError);
    expect(String((hold.signal.reason as Error).message)).toMatch(/ran out/);
    hold.stop();
  });

  it('holds as long as renewals are confirmed, and is lost at once when one is refused', async () => {
    let refuse = false;
    const hold = new ClaimHold(
      'e2',
      1,
      3000,
      0,
      () => Promise.resolve(!refuse),
      () => now,
    );
    void hold.start(() => new Promise<void>((resolve) => hold.signal.addEventListener('abort', () => resolve())));
    await advance(20_000);
    expect(hold.signal.aborted).toBe(false);
    refuse = true;
    await advance(1000);
    expect(hold.signal.aborted).toBe(true);
    expect((hold.signal.reason as Error).message).toMatch(/passed to another consumer/);
  });

  it('failed renewals are left to the deadline', async () => {
    const hold = new ClaimHold(
      'e3',
      1,
      3000,
      0,
      () => Promise.reject(new Error('connection reset')),
      () => now,
    );
    void hold.start(() => new Promise<void>((resolve) => hold.signal.addEventListener('abort', () => resolve())));
    await advance(2600);
    expect(hold.signal.aborted).toBe(false);
    await advance(200);
    expect(hold.signal.aborted).toBe(true);
  });

  it('confirm() resolves once renewed, and throws (stopping the work) when the store did not answer', async () => {
    let answer: () => Promise<boolean> = () => Promise.resolve(true);
    const hold = new ClaimHold(
      'e4',
      2,
      3000,
      0,
      () => answer(),
      () => now,
    );
    void hold.start(async () => {
      expect(heldClaim()).toBe(hold);
      await new Promise<void>((resolve) => hold.signal.addEventListener('abort', () => resolve()));
    });
    now = 2500;
    await expect(hold.confirm()).resolves.toBeUndefined();
    expect(hold.remainingMs()).toBe(2700);
    answer = () => Promise.reject(new Error('no answer within 1000 ms'));
    await expect(hold.confirm()).rejects.toBeInstanceOf(ClaimLostError);
    expect(hold.signal.aborted).toBe(true);
    expect(hold.remainingMs()).toBe(0);
  });

  it('answers heldClaim() only inside the work it runs', async () => {
    const hold = new ClaimHold(
      'e5',
      1,
      3000,
      0,
      () => Promise.resolve(true),
      () => now,
    );
    expect(heldClaim()).toBeUndefined();
    expect(await hold.start(() => Promise.resolve(heldClaim()?.run))).toBe(1);
    hold.stop();
    expect(heldClaim()).toBeUndefined();
  });
});
