import { INestApplication } from '@nestjs/common';
import { EventConsumerApp } from '@app/messaging';
import { emailServiceConfigSchema, loadConfig, usersApiConfigSchema } from '@app/config';
import { startEmailService } from '../../apps/email-service/src/bootstrap';
import { startUsersApi } from '../../apps/users-api/src/bootstrap';
import { appEnv } from './env';

export async function bootUsersApi(
  overrides: Record<string, string> = {},
): Promise<{ app: INestApplication; url: string }> {
  const app = await startUsersApi(loadConfig('users-api', usersApiConfigSchema, appEnv(overrides)));
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return { app, url };
}

export function bootEmailService(overrides: Record<string, string> = {}): Promise<EventConsumerApp> {
  return startEmailService(loadConfig('email-service', emailServiceConfigSchema, appEnv(overrides)));
}
