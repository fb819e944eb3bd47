import type { Kafka } from 'kafkajs';
import { PartitionProgress } from '../partition-progress';
import { StallWatchdog, WatchedConsumer } from './stall-watchdog';

function watched(over: Partial<WatchedConsumer> = {}) {
  const replaced: string[] = [];
  const w: WatchedConsumer = {
    consuming: () => true,
    membershipState: () => 'joined',
    batchesInFlight: () => 0,
    lastFetchAt: () => 0,
    pausedPartitions: () => [],
    progress: new PartitionProgress(),
    groupId: 'g',
    fromEarliest: true,
    checksLag: false,
    replace: (why) => replaced.push(why),
    ...over,
  };
  return { w, replaced };
}

const dog = (w: WatchedConsumer) => new StallWatchdog({} as Kafka, w, 10_000, { debug: () => undefined });

describe('StallWatchdog', () => {
  it('replaces a consumer that fetched nothing for the limit with nothing in hand', () => {
    const { w, replaced } = watched();
    dog(w).tick(10_001);
    expect(replaced).toEqual(['no fetch for 10 s and nothing in hand']);
  });

  it('leaves alone one that fetched within the limit', () => {
    const { w, replaced } = watched();
    dog(w).tick(9_999);
    expect(replaced).toEqual([]);
  });

  it('leaves alone one with a batch in hand, one in a rebalance, and one not consuming', () => {
    for (const over of [
      { batchesInFlight: () => 1 },
      { membershipState: () => 'rebalancing' as const },
      { consuming: () => false },
    ]) {
      const { w, replaced } = watched(over);
      dog(w).tick(60_000);
      expect(replaced).toEqual([]);
    }
  });

  it('a consumer crashed and rejoining by itself still counts: its silence is replaced', () => {
    const { w, replaced } = watched({ membershipState: () => 'disconnected' });
    dog(w).tick(10_001);
    expect(replaced).toHaveLength(1);
  });
});
