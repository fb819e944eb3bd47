import { DynamicModule, Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { Kafka } from 'kafkajs';
import { APP_CONFIG, KafkaConfig } from '@app/config';
import { ALL_TOPICS } from '@app/contracts';
import { createKafka } from './kafka.factory';
import { EventProducer } from './producer';
import { ensureTopics } from './topics';

/** Injection token of the process's kafkajs client. */
export const KAFKA = Symbol('KAFKA');

@Injectable()
export class MessagingLifecycle implements OnApplicationShutdown {
  constructor(private readonly producer: EventProducer) {}
  async onApplicationShutdown(): Promise<void> {
    await this.producer.disconnect();
  }
}

/** Creates every topic of the system that is missing, with partitions and replication from config. */
export async function ensureSystemTopics(kafka: Kafka, config: KafkaConfig): Promise<void> {
  await ensureTopics(kafka, ALL_TOPICS, {
    partitions: config.KAFKA_TOPIC_PARTITIONS,
    replicationFactor: config.KAFKA_REPLICATION_FACTOR,
  });
}

@Global()
@Module({})
export class MessagingModule {
  static forRoot(options: { clientId: string }): DynamicModule {
    return {
      module: MessagingModule,
      providers: [
        {
          provide: KAFKA,
          inject: [APP_CONFIG],
          useFactory: (config: KafkaConfig) => createKafka(config, options.clientId),
        },
        { provide: EventProducer, inject: [KAFKA], useFactory: (kafka: Kafka) => new EventProducer(kafka) },
        MessagingLifecycle,
      ],
      exports: [KAFKA, EventProducer],
    };
  }
}

export const InjectKafka = (): ParameterDecorator => Inject(KAFKA);
