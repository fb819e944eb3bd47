import type { Consumer, Kafka } from 'kafkajs';
import { ConsumerSupervisor, SupervisorEvents } from './supervisor';
import { ConsumerTally } from './stats';

type Listener = (event: { payload: Record<string, unknown> }) => void;

/** A kafkajs consumer stand-in: records calls, lets a spec fire its instrumentation events. */
class FakeConsumer {
  readonly events = {
    GROUP_JOIN: 'join',
    START_BATCH_PROCESS: 'start-batch',
    FETCH: 'fetch',
    REBALANCING: 'rebalancing',
    STOP: 'stop',
    CRASH: 'crash',
  };
  readonly listeners = new Map<string, Listener>();
  disconnects = 0;
  hangDisconnect = false;
  eachBatch?: (payload: unknown) => Promise<void>;
  constructor(
    readonly config: { retry: { restartOnFailure: (e: Error) => Promise<boolean> }; rebalanceTimeout?: number },
  ) {}
  on(name: string, listener: Listener) {
    this.listeners.set(name, listener);
  }
  fire(name: keyof FakeConsumer['events'], payload: Record<string, unknown>) {
    this.listeners.get(this.events[name])?.({ payload });
  }
  connect = () => Promise.resolve();
  subscribe = () => Promise.resolve();
  run = (options: { eachBatch: (payload: unknown) => Promise<void> }) => {
    this.eachBatch = options.eachBatch;
    return Promise.resolve();
  };
  disconnect = () => {
    this.disconnects += 1;
    return this.hangDisconnect ? new Promise<void>(() => undefined) : Promise.resolve();
  };
}

function setUp() {
  const made: FakeConsumer[] = [];
  const kafka = {
    consumer: (config: FakeConsumer['config']) => {
      const consumer = new FakeConsumer(config);
      made.push(consumer);
      return consumer;
    },
  } as unknown as Kafka;
  const joined: Consumer[] = [];
  const currents: boolean[] = [];
  const events: SupervisorEvents = {
    joined: (consumer) => joined.push(consumer),
    batchStarted: () => undefined,
    membership: () => undefined,
    eachBatch: (_payload, current) => {
      currents.push(current());
      return Promise.resolve();
    },
  };
  const log = { log: () => undefined, warn: () => undefined, error: () => undefined };
  const supervisor = new ConsumerSupervisor(
    kafka,
    {
      groupId: 'g',
      topics: ['emails', 'g.retry'],
      fromBeginning: true,
      fromStart: ['g.retry'],
      sessionTimeoutMs: 30_000,
      heartbeatIntervalMs: 3000,
      maxBytesPerPartition: 1024,
      concurrency: 1,
      restartBackoff: { initialMs: 1, maxMs: 1 },
      rebalanceTimeoutMs: 10_000,
    },
    events,
    new ConsumerTally('g').stats,
    log,
  );
  return { supervisor, made, joined, currents };
}

describe('ConsumerSupervisor', () => {
  it('kafkajs may restart only the current consumer: a replaced one is never restarted', async () => {
    const { supervisor, made } = setUp();
    await supervisor.start();
    const [first] = made;
    expect(await first.config.retry.restartOnFailure(new Error('x'))).toBe(true);
    await supervisor.replace('stalled');
    expect(made).toHaveLength(2);
    expect(first.disconnects).toBe(1);
    expect(await first.config.retry.restartOnFailure(new Error('x'))).toBe(false);
    expect(await made[1].config.retry.restartOnFailure(new Error('x'))).toBe(true);
  });

  it('a replaced consumer that rejoins anyway is disconnected at once, and its join is not taken as the group’s', async () => {
    const { supervisor, made, joined } = setUp();
    await supervisor.start();
    await supervisor.replace('stalled');
    const [old, current] = made;
    old.fire('GROUP_JOIN', { memberAssignment: { emails: [0] } });
    expect(old.disconnects).toBe(2);
    expect(joined).toEqual([]);
    current.fire('GROUP_JOIN', { memberAssignment: { emails: [0, 1, 2] } });
    expect(joined).toEqual([current]);
  });

  it('gives kafkajs the rebalance timeout of the recipe (claim-mode groups take a short one)', async () => {
    const { supervisor, made } = setUp();
    await supervisor.start();
    expect(made[0].config.rebalanceTimeout).toBe(10_000);
  });

  it('batches of a replaced consumer are told they are not current', async () => {
    const { supervisor, made, currents } = setUp();
    await supervisor.start();
    const oldBatch = made[0].eachBatch!;
    await supervisor.replace('stalled');
    await oldBatch({});
    await made[1].eachBatch!({});
    expect(currents).toEqual([false, true]);
  });

  it('when kafkajs gives up after a crash, a new consumer is started', async () => {
    const { supervisor, made } = setUp();
    await supervisor.start();
    made[0].fire('CRASH', { error: new Error('not retriable'), restart: false });
    await supervisor.replace('waits for the restart in progress');
    expect(made).toHaveLength(2);
  });

  it('close() disconnects the current consumer and one whose earlier disconnect did not finish', async () => {
    jest.useFakeTimers();
    try {
      const { supervisor, made } = setUp();
      await supervisor.start();
      made[0].hangDisconnect = true;
      const replacing = supervisor.replace('stalled');
      await jest.advanceTimersByTimeAsync(10_000);
      await replacing;
      expect(supervisor.retiredCount).toBe(1);
      const closing = supervisor.close();
      await jest.advanceTimersByTimeAsync(10_000);
      await closing;
      expect(made[0].disconnects).toBe(2);
      expect(made[1].disconnects).toBe(1);
    } finally {
      jest.useRealTimers();
    }
  });
});
