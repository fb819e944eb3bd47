import {
  BeforeApplicationShutdown,
  DynamicModule,
  Inject,
  Injectable,
  Module,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, DatabaseConfig, KafkaConfig } from '@app/config';
import { ensureSystemTopics, EventProducer, KAFKA, Kafka, topicExists } from '@app/messaging';
import { OutboxObservability } from './outbox.observability';
import { OutboxRelay } from './outbox.relay';
import { OutboxWriter } from './outbox.writer';

export interface OutboxModuleOptions {
  schema: string;
}

interface RelayConfig extends DatabaseConfig, KafkaConfig {
  OUTBOX_RELAY_ENABLED: boolean;
  OUTBOX_BATCH_SIZE: number;
  OUTBOX_IDLE_POLL_MS: number;
  OUTBOX_MAX_BACKOFF_MS: number;
  OUTBOX_MAX_ATTEMPTS: number;
  OUTBOX_LEADER_TIMEOUT_MS: number;
  OUTBOX_PROGRESS_TIMEOUT_MS: number;
  OUTBOX_RETENTION_HOURS: number;
  OUTBOX_LOCK_DATABASE_URL?: string;
}

@Injectable()
/** Stops the relay before shutdown hooks disconnect the producer, so no send is cut off mid-flight. */
class OutboxRelayLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(
    private readonly relay: OutboxRelay,
    @Inject(APP_CONFIG) private readonly config: RelayConfig,
  ) {}
  onApplicationBootstrap(): void {
    if (this.config.OUTBOX_RELAY_ENABLED) this.relay.start();
  }
  async beforeApplicationShutdown(): Promise<void> {
    await this.relay.stop();
  }
}

@Module({})
export class OutboxModule {
  static forRoot(options: OutboxModuleOptions): DynamicModule {
    return {
      module: OutboxModule,
      global: true,
      providers: [
        OutboxWriter,
        {
          provide: OutboxRelay,
          inject: [DataSource, EventProducer, KAFKA, APP_CONFIG],
          useFactory: (dataSource: DataSource, producer: EventProducer, kafka: Kafka, config: RelayConfig) =>
            new OutboxRelay(dataSource, producer, {
              databaseUrl: config.OUTBOX_LOCK_DATABASE_URL ?? config.DATABASE_URL,
              schema: options.schema,
              batchSize: config.OUTBOX_BATCH_SIZE,
              idlePollMs: config.OUTBOX_IDLE_POLL_MS,
              maxBackoffMs: config.OUTBOX_MAX_BACKOFF_MS,
              maxAttempts: config.OUTBOX_MAX_ATTEMPTS,
              leaderTimeoutMs: config.OUTBOX_LEADER_TIMEOUT_MS,
              progressTimeoutMs: config.OUTBOX_PROGRESS_TIMEOUT_MS,
              retentionHours: config.OUTBOX_RETENTION_HOURS,
              prepare: () => ensureSystemTopics(kafka, config),
              topicExists: (topic) => topicExists(kafka, topic),
            }),
        },
        OutboxRelayLifecycle,
        {
          provide: OutboxObservability,
          inject: [DataSource, OutboxRelay],
          useFactory: (dataSource: DataSource, relay: OutboxRelay) =>
            new OutboxObservability(dataSource, relay, options.schema),
        },
      ],
      exports: [OutboxWriter, OutboxRelay, OutboxObservability],
    };
  }
}
