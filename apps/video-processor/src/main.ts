import 'reflect-metadata';
import { idleAppConfigSchema, loadConfigOrExit, runMain } from '@app/config';
import { startEventConsumer } from '@app/messaging';
import { AppModule } from './app.module';

runMain('video-processor', async () => {
  const config = loadConfigOrExit('video-processor', idleAppConfigSchema);
  await startEventConsumer(AppModule.register(config), config, { consumerGroup: 'video-processor', inbox: 'none' });
  return 'connected to Kafka, idle: no event handlers yet';
});
