/**
 * Writes docs/asyncapi.yaml, the AsyncAPI 3.0 document of the whole system, from the code: topics, keys, event
 * types and payload schemas from libs/contracts; producers from the registry; consumer groups and what each
 * handles from the apps' own `@EventConsumer` classes. `npm run asyncapi` rewrites it; a spec checks it is current
 * and valid.
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamicModule, Logger, Type } from '@nestjs/common';
import { stringify } from 'yaml';
import { APP_CONFIG_SCHEMAS, loadConfig } from '@app/config';
import {
  ALL_TOPICS,
  CONTENT_TYPE_CLOUDEVENTS,
  EVENT_TYPES,
  EventRegistry,
  EventType,
  eventJsonSchemas,
} from '@app/contracts';
import { deadLetterTopicOf, handledEventTypes, resolveConsumers, retryTopicOf } from '@app/messaging';
import { APPS } from '../apps/registry';

export const ASYNCAPI_FILE = join(__dirname, '..', 'docs', 'asyncapi.yaml');

interface Consumer {
  app: string;
  group: string;
  kind: string;
  types: string[];
}

/** Every controller of a module tree: the app's consumers are among them. */
function controllersOf(module: DynamicModule | Type | undefined, seen = new Set<unknown>()): Type[] {
  if (!module || seen.has(module)) return [];
  seen.add(module);
  const dynamic = typeof module === 'object' ? module : undefined;
  const cls = (dynamic ? dynamic.module : module) as Type;
  const controllers = [
    ...((Reflect.getMetadata('controllers', cls) as Type[] | undefined) ?? []),
    ...(dynamic?.controllers ?? []),
  ];
  const imports = [
    ...((Reflect.getMetadata('imports', cls) as unknown[] | undefined) ?? []),
    ...((dynamic?.imports as unknown[] | undefined) ?? []),
  ].filter(
    (m): m is DynamicModule | Type => typeof m === 'function' || (typeof m === 'object' && m !== null && 'module' in m),
  );
  return [...controllers, ...imports.flatMap((m) => controllersOf(m, seen))];
}

export function consumersOfApps(): Consumer[] {
  // Building the apps' modules is enough to read their consumers; nothing connects or listens.
  Logger.overrideLogger(['error']);
  return APPS.flatMap((app) => {
    const schema = APP_CONFIG_SCHEMAS[app.name as keyof typeof APP_CONFIG_SCHEMAS];
    const config = loadConfig(app.name, schema, {});
    const controllers = controllersOf(app.module(config));
    return resolveConsumers(controllers, config, app.name).map((consumer) => ({
      app: app.name,
      group: consumer.kind === 'per-instance' ? `${consumer.group}.<instance>` : consumer.group,
      kind: consumer.kind,
      types: handledEventTypes(controllers.find((c) => c.name === consumer.className)!),
    }));
  });
}

const id = (type: string) => type.replace(/\./g, '_');

export function buildAsyncApi(): Record<string, unknown> {
  const schemas = eventJsonSchemas('draft-7') as Record<EventType, Record<string, unknown>>;
  const consumers = consumersOfApps();
  const messages: Record<string, unknown> = {};
  for (const type of EVENT_TYPES) {
    const { key, producer } = EventRegistry[type];
    const { $schema: _ignored, ...data } = schemas[type];
    messages[id(type)] = {
      name: type,
      title: type,
      summary: `${type}, produced by ${producer}; key: the ${key}`,
      contentType: CONTENT_TYPE_CLOUDEVENTS,
      headers: {
        type: 'object',
        description: 'CloudEvents attributes repeated as headers, and the W3C trace context',
        properties: {
          ce_id: { type: 'string', format: 'uuid' },
          ce_type: { type: 'string', const: type },
          ce_source: { type: 'string' },
          ce_correlationid: { type: 'string' },
          traceparent: { type: 'string', description: 'W3C trace context of the work that produced the event' },
          tracestate: { type: 'string' },
        },
        required: ['ce_id', 'ce_type', 'ce_source'],
      },
      payload: {
        type: 'object',
        description: 'A CloudEvents 1.0 structured-mode envelope; the event itself is `data`',
        required: ['specversion', 'id', 'source', 'type', 'time', 'datacontenttype', 'correlationid', 'data'],
        properties: {
          specversion: { type: 'string', const: '1.0' },
          id: { type: 'string', format: 'uuid' },
          source: { type: 'string' },
          type: { type: 'string', const: type },
          time: { type: 'string', format: 'date-time' },
          datacontenttype: { type: 'string', const: 'application/json' },
          subject: { type: 'string' },
          correlationid: { type: 'string' },
          data,
        },
      },
      bindings: { kafka: { key: { type: 'string', description: `the ${key}` }, bindingVersion: '0.5.0' } },
    };
  }
  const channels: Record<string, unknown> = {};
  for (const topic of ALL_TOPICS) {
    const types = EVENT_TYPES.filter((type) => EventRegistry[type].topic === topic);
    channels[topic] = {
      address: topic,
      description: `Topic \`${topic}\`. Each durable group has its retry topic (\`<group>.retry\`) and dead-letter topic (\`<group>.dlt\`).`,
      messages: Object.fromEntries(types.map((type) => [id(type), { $ref: `#/components/messages/${id(type)}` }])),
    };
  }
  const operations: Record<string, unknown> = {};
  for (const topic of ALL_TOPICS) {
    const types = EVENT_TYPES.filter((type) => EventRegistry[type].topic === topic);
    for (const producer of [...new Set(types.map((type) => EventRegistry[type].producer))]) {
      const sent = types.filter((type) => EventRegistry[type].producer === producer);
      operations[`${producer}_sends_${topic}`] = {
        action: 'send',
        title: `${producer} sends to ${topic}`,
        summary: `${sent.join(', ')}${producer === 'users-api' ? ' — through its transactional outbox' : ''}`,
        channel: { $ref: `#/channels/${topic}` },
        messages: sent.map((type) => ({ $ref: `#/channels/${topic}/messages/${id(type)}` })),
      };
    }
    for (const consumer of consumers) {
      const received = consumer.types.filter((type) => types.includes(type as EventType));
      if (received.length === 0) continue;
      operations[`${consumer.app}_receives_${topic}`] = {
        action: 'receive',
        title: `${consumer.app} receives from ${topic}`,
        summary:
          consumer.kind === 'per-instance'
            ? `${received.join(', ')} — a group per replica (${consumer.group}), from the latest offset`
            : `${received.join(', ')} — group ${consumer.group}; failures go to ${retryTopicOf(consumer.group)} and ${deadLetterTopicOf(consumer.group)}`,
        channel: { $ref: `#/channels/${topic}` },
        messages: received.map((type) => ({ $ref: `#/channels/${topic}/messages/${id(type)}` })),
        bindings: { kafka: { groupId: { type: 'string', enum: [consumer.group] }, bindingVersion: '0.5.0' } },
      };
    }
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'kafka-nest events',
      version: '1.0.0',
      description:
        'Every Kafka topic of the system, the events on it, who sends them and which consumer groups receive them. Generated from libs/contracts and the apps’ @EventConsumer classes by `npm run asyncapi`; do not edit by hand.',
    },
    defaultContentType: CONTENT_TYPE_CLOUDEVENTS,
    servers: {
      local: { host: '127.0.0.1:9092', protocol: 'kafka', description: 'The broker `npm start` runs' },
    },
    channels,
    operations,
    components: { messages },
  };
}

export function renderAsyncApi(): string {
  return `# Generated by \`npm run asyncapi\` from libs/contracts and the apps' consumers. Do not edit.\n${stringify(buildAsyncApi(), { lineWidth: 0 })}`;
}

if (require.main === module) {
  writeFileSync(ASYNCAPI_FILE, renderAsyncApi());
  process.stdout.write(`wrote ${ASYNCAPI_FILE}\n`);
}
