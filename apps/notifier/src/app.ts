import { Module } from '@nestjs/common';
import { notifierConfigSchema } from '@app/config';
import { defineApp } from '@app/runtime';

/** No handlers yet: the app serves health and metrics and watches the cluster. */
@Module({})
class AppModule {}

/** notifier: live notifications (not built yet). */
export const notifierApp = defineApp({
  name: 'notifier',
  schema: notifierConfigSchema,
  module: () => ({ module: AppModule }),
});
