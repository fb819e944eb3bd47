import 'reflect-metadata';
import { emailServiceConfigSchema, loadConfigOrExit, runMain } from '@app/config';
import { startEmailService } from './bootstrap';

runMain('email-service', async () => {
  const config = loadConfigOrExit('email-service', emailServiceConfigSchema);
  await startEmailService(config);
  return `consuming as group ${config.EMAIL_CONSUMER_GROUP}`;
});
