import 'reflect-metadata';
import { Controller } from '@nestjs/common';
import type { EventOf } from '@app/contracts';
import {
  ConsumerDeclarationError,
  EventConsumer,
  EventConsumerOptions,
  resolveConsumers,
} from './event-consumer.decorator';
import { HandleEvent } from './handle-event.decorator';

const TRANSPORT_METADATA = 'microservices:transport';

function consumerClass(options: EventConsumerOptions<{ GROUP: string }>) {
  @EventConsumer(options)
  @Controller()
  class Mails {
    @HandleEvent('email.requested.v1')
    send(_event: EventOf<'email.requested.v1'>): void {}
  }
  return Mails;
}

const resolve = (options: EventConsumerOptions<{ GROUP: string }>) =>
  resolveConsumers([consumerClass(options)], { GROUP: 'from-config' }, 'email-service');

const problemOf = (options: EventConsumerOptions<{ GROUP: string }>): string => {
  try {
    resolve(options);
  } catch (error) {
    if (error instanceof ConsumerDeclarationError) return error.message;
    throw error;
  }
  return 'accepted';
};

describe('@EventConsumer options, checked at boot', () => {
  it('defaults: a durable group named after the app, transactional inbox, from the earliest offset', () => {
    const [consumer] = resolve({});
    expect(consumer).toMatchObject({
      className: 'Mails',
      group: 'email-service',
      kind: 'durable',
      inbox: 'transactional',
      startFrom: 'earliest',
    });
  });

  it('takes the group from the config when given a function', () => {
    expect(resolve({ group: (config) => config.GROUP })[0].group).toBe('from-config');
  });

  it('a per-instance group has no inbox and starts at the latest offset', () => {
    expect(resolve({ kind: 'per-instance' })[0]).toMatchObject({
      kind: 'per-instance',
      inbox: 'none',
      startFrom: 'latest',
    });
  });

  it.each<[string, EventConsumerOptions<{ GROUP: string }>, string]>([
    [
      'a per-instance group with an inbox',
      { kind: 'per-instance', inbox: 'transactional' },
      "inbox: a per-instance group takes inbox 'none' only",
    ],
    [
      'a per-instance group from earliest',
      { kind: 'per-instance', startFrom: 'earliest' },
      'startFrom: a per-instance group starts at the latest offset',
    ],
    ['claim mode without a lease', { inbox: 'claim' }, "claim: inbox 'claim' needs claim: { schema, leaseMs }"],
    [
      'claim options without claim mode',
      { claim: { schema: 'videos', leaseMs: 30_000 } },
      "claim: claim options apply to inbox 'claim' only",
    ],
    ['a lease under a second', { inbox: 'claim', claim: { schema: 'videos', leaseMs: 10 } }, 'claim.leaseMs'],
    ['a group name Kafka tools cannot quote', { group: 'mails for ann' }, 'group: must be 1–200 of A-Z a-z 0-9 . _ -'],
    ['zero concurrency', { concurrency: 0 }, 'concurrency'],
    ['an unknown option', { retries: 3 } as EventConsumerOptions<{ GROUP: string }>, 'retries'],
  ])('refuses %s, naming the class and the option', (_, options, expected) => {
    const message = problemOf(options);
    expect(message).toContain('@EventConsumer of Mails');
    expect(message).toContain(expected);
  });

  it('refuses handlers in a class that did not declare itself a consumer', () => {
    @Controller()
    class Stray {
      @HandleEvent('email.requested.v1')
      send(_event: EventOf<'email.requested.v1'>): void {}
    }
    expect(() => resolveConsumers([Stray], {}, 'app')).toThrow(
      'Stray has @HandleEvent methods but no @EventConsumer(): declare its group and inbox',
    );
  });

  it('refuses two classes in one group, and routes each class’s handlers to its own server', () => {
    const first = consumerClass({ group: 'g' });
    const second = consumerClass({ group: 'g' });
    expect(() => resolveConsumers([first, second], { GROUP: '' }, 'app')).toThrow('one consumer class per group');
    const [a, b] = resolveConsumers([first, consumerClass({ group: 'h' })], { GROUP: '' }, 'app');
    expect(a.transportId).not.toBe(b.transportId);
    expect(Reflect.getMetadata(TRANSPORT_METADATA, first.prototype.send)).toBe(a.transportId);
  });

  it('passes classes without handlers over (plain HTTP controllers)', () => {
    @Controller()
    class Plain {}
    expect(resolveConsumers([Plain], {}, 'app')).toEqual([]);
  });
});

describe('@EventConsumer and inheritance', () => {
  it('refuses handlers a consumer class inherits, which could not be routed to its group alone', () => {
    @Controller()
    class Base {
      @HandleEvent('email.requested.v1')
      send(_event: EventOf<'email.requested.v1'>): void {}
    }
    @EventConsumer({ group: 'derived' })
    @Controller()
    class Derived extends Base {}
    expect(() => resolveConsumers([Derived], {}, 'app')).toThrow(
      'Derived inherits @HandleEvent methods (send): declare handlers on the consumer class itself',
    );
  });
});
