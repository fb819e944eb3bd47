import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { PartitionScheduler } from '../partition-scheduler';
import { BatchRunner } from './batch-runner';
import type { Outcome } from './message-pipeline';

const messages = (...offsets: string[]) => offsets.map((offset) => ({ offset }) as KafkaMessage);

function payload(offsets: string[], heartbeat: () => Promise<void> = () => Promise.resolve()) {
  const resolved: string[] = [];
  const commits: string[] = [];
  const p = {
    batch: { topic: 'emails', partition: 1, messages: messages(...offsets) },
    heartbeat,
    isRunning: () => true,
    isStale: () => false,
    resolveOffset: (offset: string) => resolved.push(offset),
    commitOffsetsIfNecessary: (o: { topics: { partitions: { offset: string }[] }[] }) => {
      commits.push(o.topics[0].partitions[0].offset);
      return Promise.resolve();
    },
  } as unknown as EachBatchPayload;
  return { p, resolved, commits };
}

function runner(handle: (offset: string) => Promise<Outcome> | Outcome, paused: string[] = []) {
  const scheduler = new PartitionScheduler(() => ({ pause: () => paused.push('pause'), resume: () => undefined }), {
    initialMs: 100,
    maxMs: 100,
  });
  const warnings: string[] = [];
  const r = new BatchRunner(
    { commitEveryMessages: 2, commitIntervalMs: 60_000 },
    {
      handle: (_t, _p, message) => Promise.resolve(handle(message.offset)),
      scheduler,
      running: () => true,
      log: { warn: (m) => warnings.push(m) },
      sleep: () => Promise.resolve(),
    },
  );
  return { r, scheduler, warnings };
}

describe('BatchRunner', () => {
  afterEach(() => jest.useRealTimers());

  it('resolves each handled offset, commits on the cadence and at the end', async () => {
    const { r } = runner(() => ({ kind: 'done' }));
    const { p, resolved, commits } = payload(['5', '6', '7']);
    await r.run(p, () => true);
    expect(resolved).toEqual(['5', '6', '7']);
    expect(commits).toEqual(['7', '8']);
  });

  it('stops at a message that must wait: its partition is paused, nothing after it resolved', async () => {
    jest.useFakeTimers();
    const paused: string[] = [];
    const { r, scheduler } = runner(
      (offset) => (offset === '6' ? { kind: 'wait', until: Date.now() + 1000 } : { kind: 'done' }),
      paused,
    );
    const { p, resolved, commits } = payload(['5', '6', '7']);
    await r.run(p, () => true);
    expect(resolved).toEqual(['5']);
    expect(commits).toEqual(['6']);
    expect(paused).toEqual(['pause']);
    expect(scheduler.pausedPartitions()).toEqual(['emails[1]']);
    scheduler.close();
  });

  it('a message that could not be set aside is fetched again after a backoff, not resolved', async () => {
    jest.useFakeTimers();
    const { r, scheduler, warnings } = runner(() => {
      throw new Error('broker away');
    });
    const { p, resolved } = payload(['5']);
    await r.run(p, () => true);
    expect(resolved).toEqual([]);
    expect(scheduler.pausedPartitions()).toEqual(['emails[1]']);
    expect(warnings[0]).toMatch(/emails\[1\]@5 could not be set aside .*broker away.*fetching it again in \d+ ms/);
    scheduler.close();
  });

  it('a batch of a consumer that is no longer current stops at once and resolves nothing', async () => {
    let current = true;
    const { r } = runner(() => {
      current = false;
      return { kind: 'done' };
    });
    const { p, resolved, commits } = payload(['5', '6']);
    await r.run(p, () => current);
    expect(resolved).toEqual([]);
    expect(commits).toEqual([]);
  });

  it('a heartbeat that learns of a rebalance ends the batch and is thrown after its commit', async () => {
    const rebalancing = Object.assign(new Error('The group is rebalancing'), { type: 'REBALANCE_IN_PROGRESS' });
    const { r } = runner(() => ({ kind: 'done' }));
    const { p, resolved, commits } = payload(['5', '6'], () => Promise.reject(rebalancing));
    await expect(r.run(p, () => true)).rejects.toBe(rebalancing);
    expect(resolved).toEqual(['5']);
    expect(commits).toEqual(['6']);
    expect(r.batchesInFlight).toBe(0);
    // The next join clears it: the next batch runs.
    r.joined();
    const next = payload(['7']);
    await r.run(next.p, () => true);
    expect(next.resolved).toEqual(['7']);
  });
});
