import 'reflect-metadata';
import { loadConfigOrExit, runMain, usersApiConfigSchema } from '@app/config';
import { startUsersApi } from './bootstrap';

runMain('users-api', async () => {
  const config = loadConfigOrExit('users-api', usersApiConfigSchema);
  const app = await startUsersApi(config);
  return `listening on ${await app.getUrl()}`;
});
