import type { Server } from 'node:http';
import { createLogger, startTelemetry, stopTelemetry } from '@app/telemetry';
import { DynamicModule, INestApplication, Module, Type } from '@nestjs/common';
import type { CorsOptions } from '@nestjs/common/interfaces/external/cors-options.interface';
import type { z } from 'zod';
import { DiscoveryService, NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { DataSource } from 'typeorm';
import {
  AppConfigModule,
  ConsumerConfig,
  exitOnSignals,
  HttpConfig,
  InboxConfig,
  KafkaConfig,
  loadConfigOrExit,
  LifecycleLog,
  LogFormat,
  LogLevelName,
  plainLifecycleLog,
  runMain,
} from '@app/config';
import { Logger as NestPinoLogger, Params as LoggerParams, PinoLogger } from 'nestjs-pino';
import type { Logger as Pino } from 'pino';
import {
  ConsumerDeclarationError,
  EventProducer,
  InboxStore,
  KAFKA,
  KafkaEventServer,
  MessagingModule,
  NoInbox,
  preflightKafka,
  ResolvedConsumer,
  resolveConsumers,
  retryPolicyOf,
  topicSettingsOf,
} from '@app/messaging';
import { ClaimInbox, TypeOrmInbox } from '@app/inbox';
import { ApiErrorFilter } from './api-error.filter';
import { ConsumerServers } from './consumer-servers';
import { requestLogging } from './logging';
import {
  bodyDeadline,
  endUnreadBodies,
  requireJsonBodies,
  securityHeaders,
  StreamedBodyRoute,
  strictUtf8,
} from './http-boundary';
import { RuntimeModule } from './runtime.module';
import { RuntimeMetrics } from './runtime-metrics';
import type { Kafka } from 'kafkajs';

/** What the runtime reads from every app's config. */
export type RuntimeConfig = KafkaConfig &
  ConsumerConfig &
  HttpConfig &
  Partial<InboxConfig> & { LOG_LEVEL: LogLevelName; LOG_FORMAT: LogFormat };

/** An app's config schema: a zod object whose output includes RuntimeConfig and SHUTDOWN_TIMEOUT_MS. */
type ConfigSchema = z.ZodObject;

/** What makes an app: its name, its config schema and its module. main.ts runs it; tests start it the same way. */
export interface AppDefinition<S extends ConfigSchema = ConfigSchema> {
  /** The Kafka client id, the default consumer group and the `app` of its health answer. */
  name: string;
  schema: S;
  /**
   * The app's own module for a config: its database, providers and controllers. Config and messaging come with the
   * runtime. Its `@EventConsumer` controllers decide what the app consumes.
   */
  module(config: z.infer<S>): DynamicModule;
  /** Largest JSON body accepted, in bytes (default 16 KiB). */
  jsonLimitBytes?: number;
  /** Routes that stream their body themselves (uploads): exempt from the JSON-only rule and the body deadline. */
  streamedBodies?: StreamedBodyRoute[];
  /** See RuntimeOptions.kafkaRequiredForReady (default true). */
  kafkaRequiredForReady?: boolean;
  /** Cross-origin reads the app allows (none unless given). */
  cors?(config: z.infer<S>): CorsOptions;
  /** Files under the app's src copied beside its build (globs, e.g. templates); `npm run apps:sync` reads them. */
  assets?: readonly string[];
}

export function defineApp<S extends ConfigSchema>(definition: AppDefinition<S>): AppDefinition<S> {
  return definition;
}

export interface RunningApp {
  app: INestApplication;
  /** One Kafka consumer server per `@EventConsumer` class, in the order the classes were found. */
  servers: KafkaEventServer[];
  /** The first (for most apps the only) consumer server. */
  server: KafkaEventServer;
  /** Where the HTTP server listens. */
  url: string;
}

function inboxOf(app: INestApplication, config: Partial<InboxConfig>, consumer: ResolvedConsumer): InboxStore {
  const database = (): DataSource => {
    try {
      return app.get(DataSource);
    } catch {
      throw new ConsumerDeclarationError(
        `@EventConsumer of ${consumer.className}: inbox '${consumer.inbox}' needs the app's database (DatabaseModule); use inbox 'none' for a handler that is idempotent by itself`,
      );
    }
  };
  switch (consumer.inbox) {
    case 'transactional':
      return new TypeOrmInbox(database(), config.INBOX_LOCK_TIMEOUT_MS);
    case 'claim':
      return new ClaimInbox(database(), consumer.claim!);
    case 'none':
      return new NoInbox();
  }
}

/**
 * Boots an app the one way every app boots: a Nest HTTP application (health, readiness, metrics, and the app's own
 * routes) with one Kafka consumer server per `@EventConsumer` class connected as a hybrid microservice. Consumer
 * options are validated before anything consumes. Resolves once the HTTP server listens and every consumer runs.
 * `app.close()` first drains in-flight messages and commits, then stops HTTP and closes the producer and database.
 */
export async function startApp<S extends ConfigSchema>(
  definition: AppDefinition<S>,
  config: z.infer<S>,
  logger: Pino = appLogger(definition.name, config as unknown as RuntimeConfig),
): Promise<RunningApp> {
  const { name } = definition;
  const own = definition.module(config);
  const settings = config as unknown as RuntimeConfig;
  const logging: LoggerParams = { pinoHttp: { logger } };
  const pinoLogger = new PinoLogger(logging);
  // Settings that can never reach Kafka (credentials, TLS) stop the boot here, before migrations or listening.
  await preflightKafka(settings, name);

  @Module({})
  class AppRoot {}
  const app = await NestFactory.create<NestExpressApplication>(
    {
      module: AppRoot,
      imports: [
        AppConfigModule.forRoot(config),
        MessagingModule.forRoot({ clientId: name }),
        own,
        RuntimeModule.forRoot({ app: name, kafkaRequiredForReady: definition.kafkaRequiredForReady ?? true }),
      ],
    },
    // Nest's own lines (and every `new Logger(context)`) go through pino from the first one on. Nest's default body
    // parsers (JSON and URL-encoded forms, any charset) are off: the one below takes JSON in UTF-8 only.
    // rawBody keeps the bytes of a parsed body, which strictUtf8 checks.
    { logger: new NestPinoLogger(pinoLogger, logging), bodyParser: false, rawBody: true },
  );
  try {
    // Every controller Nest instantiated, however its module was imported; validated before anything consumes.
    const controllers = app
      .get(DiscoveryService)
      .getControllers()
      .map((wrapper) => wrapper.metatype)
      .filter((metatype): metatype is Type => typeof metatype === 'function');
    const consumers = resolveConsumers(controllers, config, name);
    // With app.use, not as Nest middleware, which Nest mounts as routes on every path (and metrics read the route).
    const requests = requestLogging(logger, pinoLogger);
    app.use(requests.log);
    const metrics = app.get(RuntimeMetrics);
    app.use(metrics.httpMiddleware());
    app.use(securityHeaders());
    app.use(endUnreadBodies());
    if (definition.cors) app.enableCors(definition.cors(config));
    const boundary = {
      bodyTimeoutMs: settings.HTTP_BODY_TIMEOUT_MS,
      jsonLimitBytes: definition.jsonLimitBytes ?? 16 * 1024,
      streamedBodies: definition.streamedBodies ?? [],
    };
    app.use(requireJsonBodies(boundary));
    app.use(bodyDeadline(boundary));
    app.useBodyParser('json', { limit: boundary.jsonLimitBytes });
    app.use(strictUtf8);
    app.use(requests.bind);
    // One error shape for every app's routes (Kafka handlers have their own filter); an app's APP_FILTER comes first.
    app.useGlobalFilters(new ApiErrorFilter());

    const registry = app.get(ConsumerServers);
    const servers = consumers.map((consumer) => {
      const server = new KafkaEventServer({
        consumerGroup: consumer.group,
        groupKind: consumer.kind,
        startFrom: consumer.startFrom,
        transportId: consumer.transportId,
        observer: metrics,
        // An app that serves without Kafka also boots without it; its consumers join once the broker answers.
        joinInBackground: definition.kafkaRequiredForReady === false,
        topics: topicSettingsOf(settings),
        concurrency: consumer.concurrency ?? settings.CONSUMER_CONCURRENCY,
        retry: retryPolicyOf(settings),
        sessionTimeoutMs: settings.CONSUMER_SESSION_TIMEOUT_MS,
        heartbeatIntervalMs: settings.CONSUMER_HEARTBEAT_INTERVAL_MS,
        stallTimeoutMs: settings.CONSUMER_STALL_TIMEOUT_MS,
        rebalanceTimeoutMs: consumer.inbox === 'claim' ? settings.CONSUMER_CLAIM_REBALANCE_TIMEOUT_MS : undefined,
        inboxRetentionHours: consumer.inbox !== 'none' ? (settings.INBOX_RETENTION_HOURS ?? 0) : 0,
      });
      server.attach({
        kafka: app.get<Kafka>(KAFKA),
        producer: app.get(EventProducer),
        inbox: inboxOf(app, settings, consumer),
        positions: consumer.positions ? app.get(consumer.positions) : undefined,
      });
      app.connectMicroservice({ strategy: server });
      registry.add(server);
      return server;
    });

    // HTTP first: /health/live answers and /health/ready says "joining" while the consumers join their groups.
    await app.listen(settings.PORT, settings.HOST);
    const http: Server = app.getHttpServer();
    // Node checks open requests every 30 s, and only while the headers timeout is not the longer of the two.
    http.requestTimeout = settings.HTTP_REQUEST_TIMEOUT_MS;
    http.headersTimeout = Math.min(settings.HTTP_HEADERS_TIMEOUT_MS, settings.HTTP_REQUEST_TIMEOUT_MS);
    await app.startAllMicroservices();
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    return { app, servers, server: servers[0], url };
  } catch (error) {
    await app.close().catch(() => undefined);
    throw error;
  }
}

/**
 * An app's `main.ts` in one call: validated config (a bad value stops the boot with every problem named), the app
 * booted by `boot`, SIGTERM/SIGINT draining it, and one line saying where it listens and what it consumes.
 */
export function runApp<S extends ConfigSchema>(definition: AppDefinition<S>): void {
  const { name } = definition;
  let lifecycle: LifecycleLog | undefined;
  const boot = async () => {
    const config = loadConfigOrExit(name, definition.schema);
    const logger = appLogger(name, config as unknown as RuntimeConfig);
    lifecycle = lifecycleLog(logger);
    // Before the app is created: HTTP, Express and pg are instrumented as they load.
    startTelemetry(name);
    const { app, servers, url } = await startApp(definition, config, logger);
    // After the app drained, the spans still batched are exported (bounded: a dead collector does not hold the exit).
    const closing = { close: () => app.close().then(() => stopTelemetry()) };
    exitOnSignals(name, closing, (config as unknown as ConsumerConfig).SHUTDOWN_TIMEOUT_MS, lifecycle);
    const groups = servers.map((s) => {
      const { consumerGroup, groupKind, topics, state } = s.consumerStatus();
      if (topics.length > 0) return `group ${consumerGroup} (${groupKind}) on ${topics.join(', ')}`;
      // A consumer that joins in the background (users-api) has no topics yet at this point.
      return `group ${consumerGroup} (${state === 'idle' ? 'idle' : 'joining in the background'})`;
    });
    return `listening on ${url} ${groups.length > 0 ? `and consuming as ${groups.join('; ')}` : '(no consumers)'}`;
  };
  runMain(name, boot, () => lifecycle ?? plainLifecycleLog(name));
}

/** The app's logger as LOG_LEVEL and LOG_FORMAT say. */
function appLogger(app: string, config: RuntimeConfig): Pino {
  return createLogger({ app, level: config.LOG_LEVEL, format: config.LOG_FORMAT });
}

/** Boot, signal and shutdown lines: printed at any LOG_LEVEL, since tools and people wait for them. */
function lifecycleLog(logger: Pino): LifecycleLog {
  const lines = logger.child({ context: 'lifecycle' }, { level: 'info' });
  return { info: (message) => lines.info(message), error: (message) => lines.error(message) };
}
