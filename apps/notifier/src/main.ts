import 'reflect-metadata';
import { idleAppConfigSchema, loadConfigOrExit, runMain } from '@app/config';
import { startEventConsumer } from '@app/messaging';
import { AppModule } from './app.module';

runMain('notifier', async () => {
  const config = loadConfigOrExit('notifier', idleAppConfigSchema);
  await startEventConsumer(AppModule.register(config), config, { consumerGroup: 'notifier', inbox: 'none' });
  return 'connected to Kafka, idle: no event handlers yet';
});
