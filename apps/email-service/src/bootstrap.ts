import { INestMicroservice } from '@nestjs/common';
import { EmailServiceConfig } from '@app/config';
import { startEventConsumer } from '@app/messaging';
import { AppModule } from './app.module';

/** Builds and starts the email-service consumer. Shared by main.ts and the e2e tests. */
export function startEmailService(config: EmailServiceConfig): Promise<INestMicroservice> {
  return startEventConsumer(AppModule.register(config), config, {
    consumerGroup: config.EMAIL_CONSUMER_GROUP,
    inbox: 'database',
    concurrency: config.EMAIL_CONCURRENCY,
    retry: { initialMs: config.CONSUMER_RETRY_INITIAL_MS, maxMs: config.CONSUMER_RETRY_MAX_MS },
  });
}
