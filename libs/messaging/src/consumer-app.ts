import { DynamicModule, INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DataSource } from 'typeorm';
import { ConsumerConfig, InboxConfig, KafkaConfig, LogLevelName, logLevels } from '@app/config';
import { NoInbox, TypeOrmInbox } from './inbox';
import { GroupKind, KafkaEventServer } from './kafka-event.server';
import { KAFKA } from './messaging.module';
import { EventProducer } from './producer';
import { retryPolicyOf } from './retry-policy';
import type { Kafka } from 'kafkajs';

export interface EventConsumerOptions {
  consumerGroup: string;
  /** 'database': dedupe in the app's inbox table (needs DatabaseModule); 'none': naturally idempotent handlers. */
  inbox: 'database' | 'none';
  /** `durable` (default) or `per-instance`: see GroupKind. */
  groupKind?: GroupKind;
}

export interface EventConsumerApp {
  app: INestMicroservice;
  server: KafkaEventServer;
}

/**
 * Boots a Nest microservice whose `@HandleEvent` handlers consume Kafka through KafkaEventServer: retries on the
 * group's retry topic, dead letters on its dead-letter topic, all from the app's validated config. `app.close()`
 * drains in-flight messages and commits before it resolves.
 */
export async function startEventConsumer(
  module: DynamicModule,
  config: KafkaConfig & ConsumerConfig & Partial<InboxConfig> & { LOG_LEVEL: LogLevelName },
  options: EventConsumerOptions,
): Promise<EventConsumerApp> {
  const server = new KafkaEventServer({
    consumerGroup: options.consumerGroup,
    groupKind: options.groupKind,
    topics: { partitions: config.KAFKA_TOPIC_PARTITIONS, replicationFactor: config.KAFKA_REPLICATION_FACTOR },
    concurrency: config.CONSUMER_CONCURRENCY,
    retry: retryPolicyOf(config),
    sessionTimeoutMs: config.CONSUMER_SESSION_TIMEOUT_MS,
    heartbeatIntervalMs: config.CONSUMER_HEARTBEAT_INTERVAL_MS,
    inboxRetentionHours: options.inbox === 'database' ? config.INBOX_RETENTION_HOURS : 0,
  });
  const app = await NestFactory.createMicroservice(module, { strategy: server, logger: logLevels(config.LOG_LEVEL) });
  server.attach({
    kafka: app.get<Kafka>(KAFKA),
    producer: app.get(EventProducer),
    inbox:
      options.inbox === 'database'
        ? new TypeOrmInbox(app.get(DataSource), config.INBOX_LOCK_TIMEOUT_MS)
        : new NoInbox(),
  });
  await app.listen();
  return { app, server };
}
