import 'reflect-metadata';
import { idleAppConfigSchema, loadConfigOrExit, runMain } from '@app/config';
import { startEventConsumer } from '@app/messaging';
import { AppModule } from './app.module';

runMain('cache-invalidator', async () => {
  const config = loadConfigOrExit('cache-invalidator', idleAppConfigSchema);
  await startEventConsumer(AppModule.register(config), config, { consumerGroup: 'cache-invalidator', inbox: 'none' });
  return 'connected to Kafka, idle: no event handlers yet';
});
