import { AsyncLocalStorage } from 'node:async_hooks';
import { context, isSpanContextValid, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { pino, Logger as Pino, DestinationStream, stdTimeFunctions } from 'pino';
import pretty from 'pino-pretty';

/** Nest's level names, as LOG_LEVEL takes them. */
export type NestLevel = 'error' | 'warn' | 'log' | 'debug' | 'verbose';

const PINO_LEVEL: Record<NestLevel, pino.Level> = {
  error: 'error',
  warn: 'warn',
  log: 'info',
  debug: 'debug',
  verbose: 'trace',
};

/** What a log line says about the event being handled; the Kafka consumer sets it around each message. */
export interface LogFields {
  correlationId?: string;
  eventId?: string;
  eventType?: string;
}

const fields = new AsyncLocalStorage<LogFields>();

/** Runs `work` with `values` on every log line it writes, across awaits. */
export function withLogFields<T>(values: LogFields, work: () => T): T {
  return fields.run({ ...fields.getStore(), ...values }, work);
}

/**
 * Runs `work` outside any message's log fields and trace. For long-lived resources made lazily while a message is
 * handled (a producer's broker sockets): what they log later must not carry that message's ids.
 */
export function outsideLogContext<T>(work: () => T): T {
  return fields.exit(() => context.with(ROOT_CONTEXT, work));
}

/**
 * An error as a log line shows it: its class, message, code and stack, and those of its cause. Never the other
 * properties an error may carry: a database driver's error holds the query's parameters (a password hash) and the
 * failing row.
 */
export function serializeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const code = (error as { code?: unknown }).code;
  return {
    type: error.constructor?.name ?? error.name,
    message: error.message,
    ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}),
    stack: error.stack,
    ...(error.cause !== undefined ? { cause: serializeError(error.cause) } : {}),
  };
}

/**
 * Never printed, wherever they sit in a logged object: a credential or a password hash must not reach a log
 * collector even when someone logs a whole body or config by mistake.
 */
const SECRET_KEYS = ['password', 'passwordHash', 'password_hash', 'secret', 'token', 'authorization', 'cookie'];
// Up to three levels deep: pino's redaction takes explicit paths.
const REDACT = SECRET_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);

export interface LoggerOptions {
  app: string;
  level: NestLevel;
  format: 'json' | 'pretty';
  /** Where lines go (default stdout); tests pass a stream. */
  destination?: DestinationStream;
}

/**
 * The one pino logger of an app. JSON: one object per line with `time`, `level`, `app`, `context`, `message`, and —
 * whenever they are known — the `traceId`/`spanId` of the active span, and the `correlationId`, `eventId` and
 * `eventType` of the message being handled (HTTP requests add their `correlationId` in the runtime). Pretty: the same
 * entries as one readable line each. Writes are synchronous, so the last line before an exit is not lost.
 */
export function createLogger(options: LoggerOptions): Pino {
  const destination =
    options.destination ??
    (options.format === 'pretty'
      ? pretty({
          sync: true,
          messageKey: 'message',
          translateTime: 'SYS:HH:MM:ss.l',
          ignore: 'pid,hostname,app,context,spanId,req,res,responseTime',
          messageFormat: '{if context}[{context}] {end}{message}',
          singleLine: true,
        })
      : pino.destination({ dest: 1, sync: true }));
  return pino(
    {
      level: PINO_LEVEL[options.level],
      messageKey: 'message',
      base: { app: options.app, pid: process.pid },
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
      serializers: { err: serializeError, error: serializeError },
      mixin: () => {
        const span = trace.getSpanContext(context.active());
        const traced = span && isSpanContextValid(span) ? { traceId: span.traceId, spanId: span.spanId } : {};
        return { ...traced, ...fields.getStore() };
      },
    },
    destination,
  );
}
