import { DynamicModule, INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DataSource } from 'typeorm';
import { KafkaConfig, LogLevelName, logLevels } from '@app/config';
import { BackoffPolicy } from './backoff';
import { NoInbox, TypeOrmInbox } from './inbox';
import { KafkaEventServer } from './kafka-event.server';
import { KAFKA } from './messaging.module';
import type { Kafka } from 'kafkajs';

export interface EventConsumerOptions {
  consumerGroup: string;
  /** 'database': dedupe in the app's inbox table (needs DatabaseModule); 'none': naturally idempotent handlers. */
  inbox: 'database' | 'none';
  concurrency?: number;
  retry?: BackoffPolicy;
}

/**
 * Boots a Nest microservice whose `@HandleEvent` handlers consume Kafka through KafkaEventServer, with
 * shutdown hooks so SIGTERM drains in-flight messages and commits before the process exits.
 */
export async function startEventConsumer(
  module: DynamicModule,
  config: KafkaConfig & { LOG_LEVEL: LogLevelName },
  options: EventConsumerOptions,
): Promise<INestMicroservice> {
  const server = new KafkaEventServer({
    consumerGroup: options.consumerGroup,
    topics: { partitions: config.KAFKA_TOPIC_PARTITIONS, replicationFactor: config.KAFKA_REPLICATION_FACTOR },
    concurrency: options.concurrency,
    retry: options.retry,
  });
  const app = await NestFactory.createMicroservice(module, { strategy: server, logger: logLevels(config.LOG_LEVEL) });
  server.attach({
    kafka: app.get<Kafka>(KAFKA),
    inbox: options.inbox === 'database' ? new TypeOrmInbox(app.get(DataSource)) : new NoInbox(),
  });
  app.enableShutdownHooks();
  await app.listen();
  return app;
}
