import { PartitionProgress } from './partition-progress';

describe('PartitionProgress', () => {
  const none = new Set<string>();

  it('reports a held partition that got no batch for longer than the limit while the consumer was free, once per limit', () => {
    const progress = new PartitionProgress();
    progress.assigned({ emails: [0, 1] }, 0);
    expect(progress.tick(5_000, false, 10_000, none)).toEqual([]);
    progress.delivered('emails', 0);
    expect(progress.tick(11_000, false, 10_000, none)).toEqual(['emails[1]']);
    // Its clock started again: not reported on the next tick.
    expect(progress.tick(12_000, false, 10_000, none)).toEqual([]);
    expect(progress.tick(16_000, false, 10_000, none)).toEqual(['emails[0]']);
  });

  it('counts no idle time while a batch is being handled (a long job keeps the other partitions waiting by design)', () => {
    const progress = new PartitionProgress();
    progress.assigned({ 'video-processing': [0, 1] }, 0);
    progress.tick(5_000, false, 10_000, none);
    expect(progress.tick(600_000, true, 10_000, none)).toEqual([]);
    expect(progress.tick(604_000, false, 10_000, none)).toEqual([]);
    expect(progress.tick(606_000, false, 10_000, none)).toEqual(['video-processing[0]', 'video-processing[1]']);
  });

  it('leaves paused partitions alone and forgets partitions no longer held', () => {
    const progress = new PartitionProgress();
    progress.assigned({ emails: [0], 'emails.retry': [0] }, 0);
    expect(progress.tick(20_000, false, 10_000, new Set(['emails.retry[0]']))).toEqual(['emails[0]']);
    progress.assigned({ emails: [2] }, 20_000);
    expect(progress.holds('emails[0]')).toBe(false);
    expect(progress.holds('emails[2]')).toBe(true);
    expect(progress.tick(31_000, false, 10_000, none)).toEqual(['emails[2]']);
  });

  it('counts the batches each partition got, so a slow lag check can tell one arrived meanwhile', () => {
    const progress = new PartitionProgress();
    progress.assigned({ emails: [0] }, 0);
    expect(progress.deliveries('emails[0]')).toBe(0);
    progress.delivered('emails', 0);
    progress.delivered('emails', 0);
    expect(progress.deliveries('emails[0]')).toBe(2);
  });

  it('tells how far kafkajs fetched each partition, forgetting it on a new assignment', () => {
    const progress = new PartitionProgress();
    progress.assigned({ emails: [0] }, 0);
    expect(progress.fetchedUpTo('emails[0]')).toBe(-1n);
    progress.fetched('emails', 0, 42n);
    progress.fetched('emails', 0, 40n); // an older batch finishing late does not move it back
    expect(progress.fetchedUpTo('emails[0]')).toBe(42n);
    progress.assigned({ emails: [0] }, 10);
    expect(progress.fetchedUpTo('emails[0]')).toBe(-1n);
  });
});
