import { usersApiConfigSchema } from '@app/config';
import { defineApp } from '@app/runtime';
import { AppModule } from './app.module';

/** users-api: registrations over HTTP, events through the outbox. Run by main.ts, started the same way by tests. */
export const usersApiApp = defineApp({
  name: 'users-api',
  schema: usersApiConfigSchema,
  module: (config) => AppModule.register(config),
  // Registrations go on while Kafka is away: the outbox holds their events. A lost broker degrades, not fails, ready.
  kafkaRequiredForReady: false,
  // The upload streams its multipart body to media storage, with its own size, type and time limits.
  streamedBodies: [{ method: 'POST', path: /^\/videos\/?$/i }],
  // Pages on other origins (the console) call the API from the browser: no cookies (a bearer token in Authorization
  // is what signs a request in), the headers a client sends (If-Match on an update) and reads (X-Cache, ETag,
  // Location, Retry-After).
  cors: (config) => ({
    origin: config.USERS_API_ALLOWED_ORIGINS.includes('*') ? '*' : config.USERS_API_ALLOWED_ORIGINS,
    methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
    allowedHeaders: ['Content-Type', 'Authorization', 'If-Match', 'If-None-Match'],
    exposedHeaders: ['X-Cache', 'ETag', 'Location', 'Retry-After', 'WWW-Authenticate'],
    maxAge: 600,
  }),
});
