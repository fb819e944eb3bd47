import { z } from 'zod';
import {
  checkDatabase,
  checkKafka,
  clientQueryTimeoutMs,
  consumerEnv,
  databaseEnv,
  env,
  ffmpegEnv,
  httpEnv,
  mediaEnv,
  notifierEnv,
  redisEnv,
  videoUploadEnv,
  inboxEnv,
  kafkaEnv,
  logEnv,
  postgresUrl,
  consoleEnv,
  usersApiHttpEnv,
  authIssueEnv,
  authVerifyEnv,
} from './fields';

/**
 * Each app's default HTTP port (health, readiness, metrics and its own routes); PORT overrides it. `npm start`
 * starts every app on its default unless <APP>_PORT (USERS_API_PORT, EMAIL_SERVICE_PORT, …) says otherwise.
 */
export const APP_PORTS = {
  'users-api': 3000,
  'email-service': 3001,
  'video-processor': 3002,
  'cache-invalidator': 3003,
  notifier: 3004,
  console: 3005,
} as const;

const smtpUrl = z.url({ protocol: /^smtps?$/, error: 'must be an smtp:// or smtps:// URL' });

export const usersApiConfigSchema = z
  .object({
    ...kafkaEnv,
    ...databaseEnv,
    ...logEnv,
    ...consumerEnv,
    ...inboxEnv,
    ...mediaEnv,
    ...videoUploadEnv,
    ...redisEnv,
    ...usersApiHttpEnv,
    ...authIssueEnv,
    ...httpEnv(APP_PORTS['users-api']),
    RATE_LIMIT_PER_MINUTE: env.int(1, 1_000_000).default(120).describe('Requests per client IP per minute, then 429.'),
    OUTBOX_RELAY_ENABLED: env.bool
      .default(true)
      .describe('Run the outbox relay in this replica (one replica relays at a time, the others stand by).'),
    OUTBOX_BATCH_SIZE: env.int(1, 5000).default(200).describe('Outbox rows per publish round.'),
    OUTBOX_IDLE_POLL_MS: env
      .int(100, 600_000)
      .default(5000)
      .describe('A safety poll; the relay normally wakes on commit (NOTIFY).'),
    OUTBOX_MAX_BACKOFF_MS: env
      .int(100, 600_000)
      .default(5000)
      .describe('Longest wait between publish attempts while Kafka is down.'),
    OUTBOX_MAX_ATTEMPTS: env
      .int(1, 1000)
      .default(10)
      .describe('Failed sends of one row on its own, while the broker takes others, before the row is parked.'),
    OUTBOX_LEADER_TIMEOUT_MS: env
      .int(1000, 600_000)
      .default(10_000)
      .describe('A relay leader silent this long (frozen, cut off) loses its lock; a standby takes over.'),
    OUTBOX_PROGRESS_TIMEOUT_MS: env
      .int(1000, 3_600_000)
      .default(60_000)
      .describe(
        'The active relay gives up its lock when its loop has completed no round in this long (its database ' +
          'queries fail or hang: a pool whose pooler stopped answering while the lock session still does), so that ' +
          'a standby takes over; it takes the lock again one leader timeout later at the earliest. Time spent ' +
          "waiting on the broker does not count. Must exceed the idle poll plus one query's client timeout, and " +
          'the backoff.',
      ),
    OUTBOX_RETENTION_HOURS: env
      .int(0, 87_600)
      .default(168)
      .describe('Published outbox rows older than this are deleted hourly; 0 keeps them.'),
    OUTBOX_LOCK_DATABASE_URL: postgresUrl
      .optional()
      .describe(
        "A direct session for the relay's advisory lock, when DATABASE_URL goes through a transaction pooler; " +
          'unset: DATABASE_URL.',
      ),
  })
  .superRefine(checkKafka)
  .superRefine(checkDatabase)
  .superRefine((cfg, ctx) => {
    if (cfg.NODE_ENV === 'production' && cfg.AUTH_SIGNING_KEYS === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['AUTH_SIGNING_KEYS'],
        message:
          'is required with NODE_ENV=production (a key made at boot would die with the process): npm run auth:keys',
      });
    }
  })
  .superRefine((cfg, ctx) => {
    const least = Math.max(
      cfg.OUTBOX_IDLE_POLL_MS + clientQueryTimeoutMs(cfg.DATABASE_STATEMENT_TIMEOUT_MS),
      cfg.OUTBOX_MAX_BACKOFF_MS,
    );
    if (cfg.OUTBOX_PROGRESS_TIMEOUT_MS <= least) {
      ctx.addIssue({
        code: 'custom',
        path: ['OUTBOX_PROGRESS_TIMEOUT_MS'],
        message: `must exceed ${least} ms: the idle poll plus one query's client timeout, and the longest backoff`,
      });
    }
  });

export const emailServiceConfigSchema = z
  .object({
    ...kafkaEnv,
    ...databaseEnv,
    ...logEnv,
    ...consumerEnv,
    ...inboxEnv,
    ...httpEnv(APP_PORTS['email-service']),
    SMTP_URL: smtpUrl
      .default('smtp://127.0.0.1:1025')
      .describe('The mail server: `smtp://` (STARTTLS when offered) or `smtps://`; credentials may be in the URL.'),
    SMTP_USER: z.string().optional().describe("SMTP user name, overriding the URL's."),
    SMTP_PASSWORD: z.string().optional().describe("SMTP password, overriding the URL's."),
    SMTP_FROM: z
      .string()
      .min(3)
      .default('Kafka Nest <no-reply@kafka-nest.local>')
      .describe('The sender; its domain names the Message-IDs.'),
    SMTP_TLS_REJECT_UNAUTHORIZED: env.bool.default(true).describe("Verify the mail server's certificate."),
    SMTP_TIMEOUT_MS: env
      .int(100, 120_000)
      .default(10_000)
      .describe(
        'Connect, greeting and socket-inactivity timeout; every server reply starts it again, so it bounds no send.',
      ),
    SMTP_SEND_DEADLINE_MS: env
      .int(1000, 600_000)
      .default(60_000)
      .describe(
        "Wall-clock bound on one send, from the handler's start to the hand-over of the message (the end-of-data " +
          'dot): past it the dialogue is cut (nothing was handed over, nothing can arrive) and the event is retried. ' +
          "After the hand-over only the server's reply is awaited, for at most SMTP_TIMEOUT_MS. Must exceed SMTP_TIMEOUT_MS.",
      ),
    EMAIL_CONSUMER_GROUP: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/)
      .default('email-service')
      .describe("email-service's consumer group (and its `.retry` / `.dlt` topics)."),
  })
  .superRefine(checkKafka)
  .superRefine(checkDatabase)
  .superRefine((cfg, ctx) => {
    // The inbox keeps its transaction alive while a send runs, so the idle timeout only has to outlast a keep-alive
    // interval (a quarter of it); what bounds a send is its deadline, which must leave room for one slow reply.
    if (cfg.SMTP_SEND_DEADLINE_MS <= cfg.SMTP_TIMEOUT_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['SMTP_SEND_DEADLINE_MS'],
        message: `must be more than SMTP_TIMEOUT_MS (${cfg.SMTP_TIMEOUT_MS}), or a server that answers within its timeout is cut off`,
      });
    }
  });

/** An app that consumes Kafka and needs no database: Kafka, logging, consumer and HTTP settings. */
export function kafkaAppConfigSchema(defaultPort: number) {
  return z.object({ ...kafkaEnv, ...logEnv, ...consumerEnv, ...httpEnv(defaultPort) }).superRefine(checkKafka);
}

export const videoProcessorConfigSchema = z
  .object({
    ...kafkaEnv,
    ...databaseEnv,
    ...logEnv,
    ...consumerEnv,
    ...mediaEnv,
    ...ffmpegEnv,
    // Claims are kept as long as inbox records, and pruned the same way.
    INBOX_RETENTION_HOURS: inboxEnv.INBOX_RETENTION_HOURS,
    ...httpEnv(APP_PORTS['video-processor']),
  })
  .superRefine(checkKafka);
export const cacheInvalidatorConfigSchema = z
  .object({
    ...kafkaEnv,
    ...logEnv,
    ...consumerEnv,
    ...redisEnv,
    ...httpEnv(APP_PORTS['cache-invalidator']),
    CACHE_INVALIDATOR_GROUP: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/)
      .default('cache-invalidator')
      .describe("cache-invalidator's consumer group (and its `.retry` / `.dlt` topics)."),
  })
  .superRefine(checkKafka);

export const notifierConfigSchema = z
  .object({
    ...kafkaEnv,
    ...logEnv,
    ...consumerEnv,
    ...notifierEnv,
    ...authVerifyEnv,
    NODE_ENV: authIssueEnv.NODE_ENV,
    ...httpEnv(APP_PORTS.notifier),
  })
  .superRefine(checkKafka)
  .superRefine((cfg, ctx) => {
    if (cfg.NODE_ENV === 'production' && cfg.NOTIFIER_STREAM_SECRET === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['NOTIFIER_STREAM_SECRET'],
        message: 'is required with NODE_ENV=production (every replica must accept the ids the others give out)',
      });
    }
  });

/** The web console: Kafka (as its own principal), logging, HTTP and what the page shows. */
export const consoleConfigSchema = z
  .object({
    ...kafkaEnv,
    ...logEnv,
    ...consumerEnv,
    ...consoleEnv,
    ...authVerifyEnv,
    ...httpEnv(APP_PORTS.console),
  })
  .superRefine(checkKafka);

/** The outbox CLI: the database of the app whose outbox it looks at. */
export const databaseToolConfigSchema = z.object({ ...databaseEnv });

/** Command-line tools that only talk to Kafka (the dead-letter CLI). */
export const kafkaToolConfigSchema = z.object({ ...kafkaEnv }).superRefine(checkKafka);

export type UsersApiConfig = z.infer<typeof usersApiConfigSchema>;
export type EmailServiceConfig = z.infer<typeof emailServiceConfigSchema>;
export type KafkaAppConfig = z.infer<ReturnType<typeof kafkaAppConfigSchema>>;
export type KafkaConfig = Pick<UsersApiConfig, keyof typeof kafkaEnv>;
export type DatabaseConfig = Pick<UsersApiConfig, keyof typeof databaseEnv>;
export type ConsumerConfig = Pick<EmailServiceConfig, keyof typeof consumerEnv>;
export type InboxConfig = Pick<EmailServiceConfig, keyof typeof inboxEnv>;
export type HttpConfig = Pick<
  EmailServiceConfig,
  'PORT' | 'HOST' | 'HTTP_REQUEST_TIMEOUT_MS' | 'HTTP_BODY_TIMEOUT_MS' | 'HTTP_HEADERS_TIMEOUT_MS'
>;
export type MediaConfig = { MEDIA_DIR: string };
export type VideoProcessorConfig = z.infer<typeof videoProcessorConfigSchema>;
export type CacheInvalidatorConfig = z.infer<typeof cacheInvalidatorConfigSchema>;
export type NotifierConfig = z.infer<typeof notifierConfigSchema>;
export type ConsoleConfig = z.infer<typeof consoleConfigSchema>;
export type RedisConfig = Pick<UsersApiConfig, keyof typeof redisEnv>;

/** Every app's schema by app name: used by the compose check so a service never sets a variable its app ignores. */
export const APP_CONFIG_SCHEMAS = {
  'users-api': usersApiConfigSchema,
  'email-service': emailServiceConfigSchema,
  'video-processor': videoProcessorConfigSchema,
  'cache-invalidator': cacheInvalidatorConfigSchema,
  notifier: notifierConfigSchema,
  console: consoleConfigSchema,
} as const;
