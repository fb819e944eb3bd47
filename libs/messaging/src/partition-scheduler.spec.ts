import { CommitCadence, PartitionControl, PartitionScheduler } from './partition-scheduler';

class FakeConsumer implements PartitionControl {
  readonly calls: string[] = [];
  pause(topics: { topic: string; partitions: number[] }[]): void {
    this.calls.push(`pause ${topics[0].topic}:${topics[0].partitions[0]}`);
  }
  resume(topics: { topic: string; partitions: number[] }[]): void {
    this.calls.push(`resume ${topics[0].topic}:${topics[0].partitions[0]}`);
  }
}

const policy = { initialMs: 1000, maxMs: 30_000, multiplier: 2 };

describe('PartitionScheduler', () => {
  let consumer: FakeConsumer;
  let scheduler: PartitionScheduler;
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    consumer = new FakeConsumer();
    scheduler = new PartitionScheduler(() => consumer, policy);
  });
  afterEach(() => jest.useRealTimers());

  it('pauses a partition and resumes it when the time comes, not before', () => {
    scheduler.pauseUntil('g.retry', 1, Date.now() + 5000);
    expect(consumer.calls).toEqual(['pause g.retry:1']);
    jest.advanceTimersByTime(4999);
    expect(consumer.calls).toEqual(['pause g.retry:1']);
    jest.advanceTimersByTime(1);
    expect(consumer.calls).toEqual(['pause g.retry:1', 'resume g.retry:1']);
  });

  it('a resume that kafkajs refuses (consumer restarting) does not throw from the timer, and is reported', () => {
    const errors: string[] = [];
    const refusing: PartitionControl = {
      pause: () => undefined,
      resume: () => {
        throw new Error('Consumer group was not initialized, consumer#run must be called first');
      },
    };
    const safe = new PartitionScheduler(
      () => refusing,
      policy,
      Date.now,
      (what) => errors.push(what),
    );
    safe.pauseUntil('g.retry', 1, Date.now() + 1000);
    expect(() => jest.advanceTimersByTime(1000)).not.toThrow();
    expect(errors).toEqual(['resume g.retry[1]']);
    expect(safe.pausedPartitions()).toEqual([]);
  });

  it('a refused pause is reported, and the wait is re-applied on the next join', () => {
    const errors: string[] = [];
    let refuse = true;
    const calls: string[] = [];
    const control: PartitionControl = {
      pause: (t) => {
        if (refuse) throw new Error('Consumer group was not initialized');
        calls.push(`pause ${t[0].topic}:${t[0].partitions[0]}`);
      },
      resume: (t) => calls.push(`resume ${t[0].topic}:${t[0].partitions[0]}`),
    };
    const safe = new PartitionScheduler(
      () => control,
      policy,
      Date.now,
      (what) => errors.push(what),
    );
    expect(() => safe.pauseUntil('g.retry', 0, Date.now() + 5000)).not.toThrow();
    expect(errors).toEqual(['pause g.retry[0]']);
    refuse = false;
    safe.rejoined();
    expect(calls).toEqual(['pause g.retry:0']);
    jest.advanceTimersByTime(5000);
    expect(calls).toEqual(['pause g.retry:0', 'resume g.retry:0']);
    // A wait that is over is not paused again by a later join.
    safe.rejoined();
    expect(calls).toHaveLength(2);
  });

  it('a second pause of the same partition replaces the first timer', () => {
    const resumes = () => consumer.calls.filter((c) => c.startsWith('resume'));
    // Sooner than the first: resumed at the second's time, and the first timer no longer fires.
    scheduler.pauseUntil('g.retry', 1, Date.now() + 5000);
    scheduler.pauseUntil('g.retry', 1, Date.now() + 1000);
    jest.advanceTimersByTime(999);
    expect(resumes()).toEqual([]);
    expect(scheduler.pausedPartitions()).toEqual(['g.retry[1]']);
    jest.advanceTimersByTime(1);
    expect(resumes()).toEqual(['resume g.retry:1']);
    jest.advanceTimersByTime(10_000);
    expect(resumes()).toHaveLength(1);
    // Later than the first: not resumed at the first's time.
    scheduler.pauseUntil('g.retry', 1, Date.now() + 1000);
    scheduler.pauseUntil('g.retry', 1, Date.now() + 5000);
    jest.advanceTimersByTime(4999);
    expect(resumes()).toHaveLength(1);
    jest.advanceTimersByTime(1);
    expect(resumes()).toHaveLength(2);
    expect(scheduler.pausedPartitions()).toEqual([]);
  });

  it('a due time past what a timer holds does not resume after 1 ms (Node would): it waits the longest timer', () => {
    scheduler.pauseUntil('g.retry', 0, 1e15);
    jest.advanceTimersByTime(60_000);
    expect(consumer.calls).toEqual(['pause g.retry:0']);
  });

  it('after close no partition is resumed and no new pause happens', () => {
    scheduler.pauseUntil('g.retry', 0, Date.now() + 1000);
    scheduler.close();
    scheduler.pauseUntil('g.retry', 2, Date.now() + 1000);
    jest.advanceTimersByTime(5000);
    expect(consumer.calls).toEqual(['pause g.retry:0']);
  });

  it('times a retry by its header, clamped to the longest backoff, and keeps that time for the same head', () => {
    const now = Date.now();
    expect(scheduler.retryDueAt('g.retry', 0, '7', now + 2000)).toBe(now + 2000);
    // A writer clock an hour ahead: at most maxMs, counted from first sight, and fetching it again does not move it.
    expect(scheduler.retryDueAt('g.retry', 1, '3', now + 3_600_000)).toBe(now + 30_000);
    jest.advanceTimersByTime(20_000);
    expect(scheduler.retryDueAt('g.retry', 1, '3', now + 3_600_000)).toBe(now + 30_000);
    scheduler.retryTaken('g.retry', 1);
    expect(scheduler.retryDueAt('g.retry', 1, '4', now + 3_600_000)).toBe(now + 50_000);
  });

  it('backs off per partition after failed set-asides, and starts over once one succeeds', () => {
    const random = jest.spyOn(Math, 'random').mockReturnValue(1);
    expect(scheduler.setAsideFailed('emails', 0)).toBe(1000);
    expect(scheduler.setAsideFailed('emails', 0)).toBe(2000);
    expect(scheduler.setAsideFailed('emails', 1)).toBe(1000);
    scheduler.settled('emails', 0);
    expect(scheduler.setAsideFailed('emails', 0)).toBe(1000);
    random.mockRestore();
  });
});

describe('CommitCadence', () => {
  it('is due every n messages or after the interval, and commits the offset after the last handled', () => {
    let now = 0;
    const cadence = new CommitCadence(3, 1000, () => now);
    expect(cadence.next()).toBeUndefined();
    expect(cadence.handled('10')).toBe(false);
    expect(cadence.handled('11')).toBe(false);
    expect(cadence.handled('12')).toBe(true);
    expect(cadence.next()).toBe('13');
    cadence.committed();
    expect(cadence.next()).toBeUndefined();
    expect(cadence.handled('13')).toBe(false);
    now = 1000;
    expect(cadence.handled('14')).toBe(true);
  });

  it('handles offsets past 2^53', () => {
    const cadence = new CommitCadence(1, 1000, () => 0);
    cadence.handled('9007199254740993');
    expect(cadence.next()).toBe('9007199254740994');
  });
});
