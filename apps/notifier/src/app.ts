import { Module } from '@nestjs/common';
import { AuthModule } from '@app/auth';
import { NotifierConfig, notifierConfigSchema } from '@app/config';
import { TopicHistory } from '@app/messaging';
import { defineApp } from '@app/runtime';
import { LiveEventsConsumer } from './stream/live-events.consumer';
import { LivePositions } from './stream/live-positions';
import { NotificationHub } from './stream/notification-hub';
import { streamKeysProvider } from './stream/stream-keys';
import { StreamController } from './stream/stream.controller';

@Module({
  controllers: [StreamController, LiveEventsConsumer],
  providers: [NotificationHub, LivePositions, TopicHistory, streamKeysProvider],
})
class AppModule {}

/**
 * notifier: live notifications over Server-Sent Events, resumable on any replica: post events on the public stream,
 * a signed-in user's video and email events on their own.
 */
export const notifierApp = defineApp({
  name: 'notifier',
  schema: notifierConfigSchema,
  module: (config: NotifierConfig) => ({ module: AppModule, imports: [AuthModule.remote(config)] }),
  cors: (config) => {
    // Pages served elsewhere (the console, apps/console) read the streams. The per-user stream's cookie is sent
    // cross-origin only to listed origins; `*` allows reading the public stream and never credentials.
    const any = config.NOTIFIER_ALLOWED_ORIGINS.includes('*');
    return {
      origin: any ? '*' : config.NOTIFIER_ALLOWED_ORIGINS,
      credentials: !any,
      methods: ['GET', 'POST', 'DELETE'],
      allowedHeaders: ['Last-Event-ID', 'Cache-Control', 'Authorization'],
      maxAge: 600,
    };
  },
});
