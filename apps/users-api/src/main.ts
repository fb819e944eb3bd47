import 'reflect-metadata';
import { exitOnSignals, loadConfigOrExit, runMain, usersApiConfigSchema } from '@app/config';
import { startUsersApi } from './bootstrap';

runMain('users-api', async () => {
  const config = loadConfigOrExit('users-api', usersApiConfigSchema);
  const app = await startUsersApi(config);
  exitOnSignals('users-api', app, config.SHUTDOWN_TIMEOUT_MS);
  return `listening on ${await app.getUrl()}`;
});
