import 'reflect-metadata';
import { exitOnSignals, idleAppConfigSchema, loadConfigOrExit, runMain } from '@app/config';
import { startEventConsumer } from '@app/messaging';
import { AppModule } from './app.module';

runMain('cache-invalidator', async () => {
  const config = loadConfigOrExit('cache-invalidator', idleAppConfigSchema);
  const { app } = await startEventConsumer(AppModule.register(config), config, {
    consumerGroup: 'cache-invalidator',
    inbox: 'none',
  });
  exitOnSignals('cache-invalidator', app, config.SHUTDOWN_TIMEOUT_MS);
  return 'connected to Kafka, idle: no event handlers yet';
});
