import { Module } from '@nestjs/common';
import { notifierConfigSchema } from '@app/config';
import { TopicHistory } from '@app/messaging';
import { defineApp } from '@app/runtime';
import { LiveEventsConsumer } from './stream/live-events.consumer';
import { LivePositions } from './stream/live-positions';
import { NotificationHub } from './stream/notification-hub';
import { StreamController } from './stream/stream.controller';

@Module({
  controllers: [StreamController, LiveEventsConsumer],
  providers: [NotificationHub, LivePositions, TopicHistory],
})
class AppModule {}

/** notifier: live notifications over Server-Sent Events, from post, video and email events, resumable on any replica. */
export const notifierApp = defineApp({
  name: 'notifier',
  schema: notifierConfigSchema,
  module: () => ({ module: AppModule }),
  // Pages served elsewhere (the console, apps/console) read the stream; it takes no credentials.
  cors: (config) => ({
    origin: config.NOTIFIER_ALLOWED_ORIGINS.includes('*') ? '*' : config.NOTIFIER_ALLOWED_ORIGINS,
    methods: ['GET'],
    allowedHeaders: ['Last-Event-ID', 'Cache-Control'],
    maxAge: 600,
  }),
});
