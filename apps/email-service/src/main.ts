import 'reflect-metadata';
import { emailServiceConfigSchema, exitOnSignals, loadConfigOrExit, runMain } from '@app/config';
import { startEmailService } from './bootstrap';

runMain('email-service', async () => {
  const config = loadConfigOrExit('email-service', emailServiceConfigSchema);
  const { app } = await startEmailService(config);
  exitOnSignals('email-service', app, config.SHUTDOWN_TIMEOUT_MS);
  return `consuming as group ${config.EMAIL_CONSUMER_GROUP}`;
});
