import { Sleeper } from './sleeper';

describe('Sleeper', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const settled = async (promise: Promise<void>) => {
    let done = false;
    void promise.then(() => (done = true));
    await Promise.resolve();
    await Promise.resolve();
    return () => done;
  };

  it('a commit (wake) ends an idle wait at once', async () => {
    const sleeper = new Sleeper();
    const isDone = await settled(sleeper.sleep(5000, 'idle'));
    sleeper.wake();
    await jest.advanceTimersByTimeAsync(0);
    expect(isDone()).toBe(true);
  });

  it('a commit during a backoff does not cut it short: the relay does not retry on every commit while failing', async () => {
    const sleeper = new Sleeper();
    const isDone = await settled(sleeper.sleep(5000, 'backoff'));
    for (let i = 0; i < 20; i++) sleeper.wake();
    await jest.advanceTimersByTimeAsync(4999);
    expect(isDone()).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(isDone()).toBe(true);
  });

  it('a wake that came during a backoff makes the next idle wait return at once (no commit is missed)', async () => {
    const sleeper = new Sleeper();
    const backoff = sleeper.sleep(1000, 'backoff');
    sleeper.wake();
    await jest.advanceTimersByTimeAsync(1000);
    await backoff;
    const isDone = await settled(sleeper.sleep(5000, 'idle'));
    expect(isDone()).toBe(true);
  });

  it('stop (interrupt) ends a backoff too', async () => {
    const sleeper = new Sleeper();
    const isDone = await settled(sleeper.sleep(60_000, 'backoff'));
    sleeper.interrupt();
    await jest.advanceTimersByTimeAsync(0);
    expect(isDone()).toBe(true);
  });
});
