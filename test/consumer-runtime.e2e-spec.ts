import { randomUUID } from 'node:crypto';
import { Controller, Module } from '@nestjs/common';
import { ALL_TOPICS, EventOf } from '@app/contracts';
import { kafkaAppConfigSchema, loadConfig } from '@app/config';
import {
  deadLetterTopicOf,
  ensureTopics,
  failureHeaders,
  FailureHeaders,
  EventConsumer,
  EventConsumerOptions,
  HandleEvent,
  retryTopicOf,
  toRecord,
} from '@app/messaging';
import { defineApp, RunningApp, startApp } from '@app/runtime';
import { testKafka } from './support/broker';
import { appEnv } from './support/env';
import { EmailEvents, startGroupAtEnd } from './support/kafka';
import { waitFor } from './support/wait';

/** What one consumer instance saw; `failOn` makes its handler throw for one address. */
class Seen {
  readonly addresses: string[] = [];
  failOn?: string;
}

/** An app of one consumer class with the given options, whose handler records what it sees. */
function listenerApp(seen: Seen, options: EventConsumerOptions) {
  @EventConsumer(options)
  @Controller()
  class Listener {
    @HandleEvent('email.requested.v1')
    onEmailRequested(event: EventOf<'email.requested.v1'>): void {
      if (event.data.to === seen.failOn) throw new Error(`handler refused ${event.data.to}`);
      seen.addresses.push(event.data.to);
    }
  }
  @Module({ controllers: [Listener] })
  class ListenerModule {}
  return defineApp({ name: 'listener', schema: kafkaAppConfigSchema(0), module: () => ({ module: ListenerModule }) });
}

async function perInstance(name: string, seen: Seen): Promise<RunningApp> {
  const config = loadConfig('listener', kafkaAppConfigSchema(0), appEnv());
  return startApp(listenerApp(seen, { group: name, kind: 'per-instance' }), config);
}

describe('consumer runtime: per-instance groups', () => {
  const events = new EmailEvents();
  const apps: RunningApp[] = [];

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
  });

  afterAll(async () => {
    for (const app of apps) await app.app.close().catch(() => undefined);
    await events.close();
  });

  it('every instance sees every event from the moment it started; failures pass; nothing is left on the broker', async () => {
    const name = `fanout-${randomUUID().slice(0, 8)}`;
    const before = await events.publish(3, `${name}-before`);
    const [seenA, seenB] = [new Seen(), new Seen()];
    const a = await perInstance(name, seenA);
    const b = await perInstance(name, seenB);
    apps.push(a, b);
    expect(a.server.groupId).not.toBe(b.server.groupId);
    expect(a.server.groupId.startsWith(`${name}.`)).toBe(true);
    // Joined and assigned every partition before anything is published: "from the latest" means from now.
    const admin = testKafka().admin();
    await admin.connect();
    try {
      await waitFor('both instances to hold every partition', async () => {
        const { groups } = await admin.describeGroups([a.server.groupId, b.server.groupId]);
        return groups.every((group) => group.state === 'Stable' && group.members.length === 1);
      });
      await waitFor(
        'both instances to be fetching',
        // A new group starting at the latest offset resolves that offset on its first fetch after the join.
        () => [a, b].every((app) => app.server.stats.groupJoins > 0 && app.server.stats.fetches > 0),
      );

      const addressOf = (value: string) => (JSON.parse(value) as { data: { to: string } }).data.to;
      // The address events.publish will give its sixth event: instance B's handler refuses it.
      seenB.failOn = `${name}-live-5@example.com`;
      const records = await events.publish(20, `${name}-live`);
      const live = records.map((r) => addressOf(r.value));
      expect(live).toContain(seenB.failOn);
      await waitFor('every live event at instance A', () => live.every((to) => seenA.addresses.includes(to)));
      await waitFor('every live event but the refused one at instance B', () =>
        live.filter((to) => to !== seenB.failOn).every((to) => seenB.addresses.includes(to)),
      );
      // Started at the latest offset: the events published before are not replayed to a new instance.
      const earlier = before.map((r) => addressOf(r.value));
      expect(seenA.addresses.filter((to) => earlier.includes(to))).toEqual([]);
      // A failure is counted and passed over: no retry, no dead letter, the partition moved on.
      expect(b.server.stats.failed).toBe(1);
      expect(seenA.addresses).toHaveLength(20);
      const topics = await admin.listTopics();
      expect(topics.filter((t) => t.startsWith(`${name}`))).toEqual([]);
      expect(topics).not.toContain(retryTopicOf(name));
      expect(topics).not.toContain(deadLetterTopicOf(name));

      const groupIds = [a.server.groupId, b.server.groupId];
      for (const app of [a, b]) await app.app.close();
      apps.length = 0;
      const { groups } = await admin.listGroups();
      expect(groups.map((g) => g.groupId).filter((id) => groupIds.includes(id))).toEqual([]);
    } finally {
      await admin.disconnect();
    }
  });
});

describe('consumer runtime: consumer classes of different kinds in one app', () => {
  const events = new EmailEvents();
  let running: RunningApp | undefined;

  afterAll(async () => {
    await running?.app.close();
    await events.close();
  });

  it('runs one server per class, each with its own handlers, and reports both in readiness', async () => {
    const name = `mixed-${randomUUID().slice(0, 8)}`;
    const [durableSeen, liveSeen] = [new Seen(), new Seen()];
    @EventConsumer({ group: `${name}-durable`, inbox: 'none', startFrom: 'latest' })
    @Controller()
    class Durable {
      @HandleEvent('email.requested.v1')
      on(event: EventOf<'email.requested.v1'>): void {
        durableSeen.addresses.push(event.data.to);
      }
    }
    @EventConsumer({ group: `${name}-live`, kind: 'per-instance' })
    @Controller()
    class Live {
      @HandleEvent('email.requested.v1')
      on(event: EventOf<'email.requested.v1'>): void {
        liveSeen.addresses.push(event.data.to);
      }
    }
    @Module({ controllers: [Durable, Live] })
    class MixedModule {}
    const definition = defineApp({
      name: 'mixed',
      schema: kafkaAppConfigSchema(0),
      module: () => ({ module: MixedModule }),
    });
    running = await startApp(definition, loadConfig('mixed', kafkaAppConfigSchema(0), appEnv()));
    expect(running.servers.map((s) => s.consumerStatus().groupKind)).toEqual(['durable', 'per-instance']);
    await waitFor('both groups to hold their partitions', () =>
      running?.servers.every((s) => s.consumerStatus().membership.state === 'joined' && s.stats.fetches > 0),
    );
    const ready = (await (await fetch(`${running.url}/health/ready`)).json()) as {
      details: Record<string, { status: string }>;
    };
    expect(ready.details[`consumer:${name}-durable`].status).toBe('up');
    expect(ready.details[`consumer:${name}-live`].status).toBe('up');

    const records = await events.publish(10, name);
    const sent = records.map((r) => (JSON.parse(r.value) as { data: { to: string } }).data.to).sort();
    await waitFor(
      'every event at both classes',
      () => durableSeen.addresses.length >= 10 && liveSeen.addresses.length >= 10,
    );
    // Each class's handler ran once per event: had both servers registered both classes, one would see none or twice.
    await waitFor('the durable group to commit', () =>
      running?.servers[0].consumerStatus().stats.handled === 10 ? true : undefined,
    );
    expect([...durableSeen.addresses].sort()).toEqual(sent);
    expect([...liveSeen.addresses].sort()).toEqual(sent);
  });
});

describe('consumer runtime: a replica joining while another works through a backlog', () => {
  const apps: RunningApp[] = [];
  const producer = testKafka().producer();

  afterAll(async () => {
    for (const app of apps) await app.app.close().catch(() => undefined);
    await producer.disconnect();
  });

  it('gets partitions once the job in hand is done, not after one job from every partition the first had fetched', async () => {
    const name = `backlog-${randomUUID().slice(0, 8)}`;
    await startGroupAtEnd(name, 'emails');
    // One slow job on each of 12 partitions (of the group's retry topic, due now): the first replica fetches all
    // 12 batches at once. kafkajs raises a batch's rebalance error only after every batch of the fetch returned.
    const retryTopic = retryTopicOf(name);
    await ensureTopics(testKafka(), [retryTopic], { partitions: 12, replicationFactor: 1 });
    await producer.connect();
    const now = Date.now();
    await producer.send({
      topic: retryTopic,
      acks: -1,
      messages: Array.from({ length: 12 }, (_, i) => {
        const userId = randomUUID();
        const record = toRecord(
          'email.requested.v1',
          { to: `${name}-${i}@example.com`, template: 'welcome', data: { username: `${name}-${i}` }, userId },
          { key: userId, source: 'e2e-tests' },
        );
        const origin = { topic: 'emails', partition: 0, offset: String(i), timestamp: String(now) };
        return {
          ...record,
          partition: i,
          headers: {
            ...record.headers,
            ...failureHeaders({ origin, consumerGroup: name, attempts: 1, firstFailedAt: now, error: new Error('x') }),
            [FailureHeaders.RetryAt]: String(now),
          },
        };
      }),
    });
    const slowApp = (seen: Seen) => {
      @EventConsumer({ group: name, inbox: 'none' })
      @Controller()
      class SlowWorker {
        @HandleEvent('email.requested.v1')
        async on(event: EventOf<'email.requested.v1'>): Promise<void> {
          await new Promise((resolve) => setTimeout(resolve, 1000));
          seen.addresses.push(event.data.to);
        }
      }
      @Module({ controllers: [SlowWorker] })
      class SlowModule {}
      return defineApp({ name: 'slow', schema: kafkaAppConfigSchema(0), module: () => ({ module: SlowModule }) });
    };
    const env = appEnv({ CONSUMER_HEARTBEAT_INTERVAL_MS: '500' });
    const [first, second] = [new Seen(), new Seen()];
    apps.push(await startApp(slowApp(first), loadConfig('slow', kafkaAppConfigSchema(0), env)));
    await waitFor('the first replica to be working', () => first.addresses.length > 0);
    apps.push(await startApp(slowApp(second), loadConfig('slow', kafkaAppConfigSchema(0), env)));

    await waitFor('all 12 jobs to be done', () => first.addresses.length + second.addresses.length === 12, {
      timeoutMs: 60_000,
    });
    // Had the first replica gone on to the next batch's job after the rebalance began, it would have done all 12
    // before rejoining: the second would have been given partitions with nothing left on them.
    expect(second.addresses.length).toBeGreaterThan(0);
    expect(new Set([...first.addresses, ...second.addresses]).size).toBe(12);
  });
});
