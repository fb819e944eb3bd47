import {
  DynamicModule,
  Global,
  Inject,
  Injectable,
  Module,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { Kafka } from 'kafkajs';
import { APP_CONFIG, KafkaConfig } from '@app/config';
import { ALL_TOPICS } from '@app/contracts';
import { createKafka } from './kafka.factory';
import { KafkaMonitor } from './kafka-monitor';
import { EventProducer } from './producer';
import { ensureTopics, topicSettingsOf } from './topics';

/** Injection token of the process's kafkajs client. */
export const KAFKA = Symbol('KAFKA');

@Injectable()
export class MessagingLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    private readonly producer: EventProducer,
    private readonly monitor: KafkaMonitor,
  ) {}
  onApplicationBootstrap(): void {
    this.monitor.start();
  }
  async onApplicationShutdown(): Promise<void> {
    await this.monitor.close();
    await this.producer.disconnect();
  }
}

/** Creates every topic of the system that is missing, with partitions and replication from config. */
export async function ensureSystemTopics(kafka: Kafka, config: KafkaConfig): Promise<void> {
  await ensureTopics(kafka, ALL_TOPICS, topicSettingsOf(config));
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
        {
          provide: KafkaMonitor,
          inject: [KAFKA, APP_CONFIG],
          useFactory: (kafka: Kafka, config: KafkaConfig) =>
            new KafkaMonitor(
              kafka,
              config.KAFKA_PROBE_INTERVAL_MS,
              Math.max(config.KAFKA_PROBE_INTERVAL_MS, config.KAFKA_CONNECT_TIMEOUT_MS),
            ),
        },
        MessagingLifecycle,
      ],
      exports: [KAFKA, EventProducer, KafkaMonitor],
    };
  }
}

export const InjectKafka = (): ParameterDecorator => Inject(KAFKA);
