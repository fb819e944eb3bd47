import { DynamicModule, INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DataSource } from 'typeorm';
import { ConsumerConfig, InboxConfig, KafkaConfig, LogLevelName, logLevels } from '@app/config';
import { ClaimInbox } from './claim-inbox';
import { InboxStore, NoInbox, TypeOrmInbox } from './inbox';
import { GroupKind, KafkaEventServer } from './kafka-event.server';
import { KAFKA } from './messaging.module';
import { EventProducer } from './producer';
import { retryPolicyOf } from './retry-policy';
import type { Kafka } from 'kafkajs';

export interface EventConsumerOptions {
  consumerGroup: string;
  /**
   * 'database': the inbox row and the handler's work commit in one transaction (needs DatabaseModule);
   * 'claim': long work — a claim with a lease commits at once, the handler runs with no transaction open (needs
   * DatabaseModule and a `claims` table, see createClaimTable); 'none': naturally idempotent handlers.
   */
  inbox: 'database' | 'claim' | 'none';
  /** For 'claim': the schema of the claims table and the lease, renewed every third of it while a handler runs. */
  claim?: { schema: string; leaseMs: number };
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
    inbox: inboxOf(app, config, options),
  });
  await app.listen();
  return { app, server };
}

function inboxOf(app: INestMicroservice, config: Partial<InboxConfig>, options: EventConsumerOptions): InboxStore {
  switch (options.inbox) {
    case 'database':
      return new TypeOrmInbox(app.get(DataSource), config.INBOX_LOCK_TIMEOUT_MS);
    case 'claim':
      if (!options.claim) throw new Error(`consumer group ${options.consumerGroup}: inbox 'claim' needs claim options`);
      return new ClaimInbox(app.get(DataSource), options.claim);
    case 'none':
      return new NoInbox();
  }
}
