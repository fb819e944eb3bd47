import 'reflect-metadata';
import { exitOnSignals, idleAppConfigSchema, loadConfigOrExit, runMain } from '@app/config';
import { startEventConsumer } from '@app/messaging';
import { AppModule } from './app.module';

runMain('video-processor', async () => {
  const config = loadConfigOrExit('video-processor', idleAppConfigSchema);
  const { app } = await startEventConsumer(AppModule.register(config), config, {
    consumerGroup: 'video-processor',
    inbox: 'none',
  });
  exitOnSignals('video-processor', app, config.SHUTDOWN_TIMEOUT_MS);
  return 'connected to Kafka, idle: no event handlers yet';
});
