import { EmailServiceConfig } from '@app/config';
import { EventConsumerApp, startEventConsumer } from '@app/messaging';
import { AppModule } from './app.module';

/** Builds and starts the email-service consumer. Shared by main.ts and the e2e tests. */
export function startEmailService(config: EmailServiceConfig): Promise<EventConsumerApp> {
  return startEventConsumer(AppModule.register(config), config, {
    consumerGroup: config.EMAIL_CONSUMER_GROUP,
    inbox: 'database',
  });
}
