import { consoleConfigSchema, emailServiceConfigSchema, loadConfig, usersApiConfigSchema } from '@app/config';
import { RunningApp, startApp } from '@app/runtime';
import { consoleApp } from '../../apps/console/src/app';
import { emailServiceApp } from '../../apps/email-service/src/app';
import { usersApiApp } from '../../apps/users-api/src/app';
import { appEnv } from './env';

export function bootUsersApi(overrides: Record<string, string> = {}): Promise<RunningApp> {
  return startApp(usersApiApp, loadConfig('users-api', usersApiConfigSchema, appEnv(overrides)));
}

export function bootEmailService(overrides: Record<string, string> = {}): Promise<RunningApp> {
  return startApp(emailServiceApp, loadConfig('email-service', emailServiceConfigSchema, appEnv(overrides)));
}

export function bootConsole(overrides: Record<string, string> = {}): Promise<RunningApp> {
  return startApp(consoleApp, loadConfig('console', consoleConfigSchema, appEnv(overrides)));
}
