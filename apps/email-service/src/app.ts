import { emailServiceConfigSchema } from '@app/config';
import { defineApp } from '@app/runtime';
import { AppModule } from './app.module';

/** email-service: mails each `email.requested.v1` once. Run by main.ts, started the same way by the e2e tests. */
export const emailServiceApp = defineApp({
  name: 'email-service',
  schema: emailServiceConfigSchema,
  module: (config) => AppModule.register(config),
  assets: ['**/*.hbs'],
});
