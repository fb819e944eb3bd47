import 'reflect-metadata';
import { exitOnSignals, idleAppConfigSchema, loadConfigOrExit, runMain } from '@app/config';
import { startEventConsumer } from '@app/messaging';
import { AppModule } from './app.module';

runMain('notifier', async () => {
  const config = loadConfigOrExit('notifier', idleAppConfigSchema);
  const { app } = await startEventConsumer(AppModule.register(config), config, {
    consumerGroup: 'notifier',
    inbox: 'none',
  });
  exitOnSignals('notifier', app, config.SHUTDOWN_TIMEOUT_MS);
  return 'connected to Kafka, idle: no event handlers yet';
});
