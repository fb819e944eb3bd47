import { z } from 'zod';

/** Thrown when the environment does not hold a valid configuration; names every bad variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly app: string,
    readonly problems: readonly string[],
  ) {
    super(`Invalid configuration for ${app}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

type Env = Record<string, string | undefined>;

/**
 * Parses the environment with a zod schema whose keys are the variable names. Empty strings count as unset,
 * so `FOO=` falls back to the default instead of failing as an invalid value.
 */
export function loadConfig<S extends z.ZodObject>(app: string, schema: S, env: Env = process.env): z.infer<S> {
  const input: Env = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') input[key] = value.trim();
  }
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      app,
      result.error.issues.map((issue) => {
        const name = issue.path.length > 0 ? issue.path.join('.') : '(config)';
        const given = issue.path.length > 0 ? input[String(issue.path[0])] : undefined;
        return given === undefined
          ? `${name}: ${issue.message}`
          : `${name}: ${issue.message} (got ${JSON.stringify(redact(name, given))})`;
      }),
    );
  }
  return result.data;
}

function redact(name: string, value: string): string {
  if (/PASSWORD|SECRET|TOKEN/i.test(name)) return '***';
  return value.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

/** Loads config or prints the problems and exits 1: used by every main.ts so a bad value stops the boot. */
export function loadConfigOrExit<S extends z.ZodObject>(app: string, schema: S): z.infer<S> {
  try {
    return loadConfig(app, schema);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

export type LogLevelName = 'error' | 'warn' | 'log' | 'debug' | 'verbose';
export type LogFormat = 'json' | 'pretty';

/** Where the boot, signal and shutdown lines go: the app's logger once it has one. Always printed, at any LOG_LEVEL. */
export interface LifecycleLog {
  info(message: string): void;
  error(message: string): void;
}

/** Plain lines on stdout and stderr, prefixed with the app's name: before an app has its logger. */
export function plainLifecycleLog(app: string): LifecycleLog {
  return {
    info: (message) => process.stdout.write(`${app} ${message}\n`),
    error: (message) => process.stderr.write(`${app} ${message}\n`),
  };
}

/**
 * Runs an app's boot function; a failure to boot prints one clear line and exits 1 instead of an unhandled rejection.
 * `log` is asked for at the time of printing, so a boot that set up its logger prints through it.
 */
export function runMain(
  app: string,
  boot: () => Promise<string>,
  log: () => LifecycleLog = () => plainLifecycleLog(app),
): void {
  boot().then(
    (message) => log().info(message),
    (error: unknown) => {
      log().error(`failed to start: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}

export interface Closable {
  close(): Promise<void>;
}

/**
 * SIGTERM or SIGINT closes the app — consumers stop fetching, finish in-flight messages, commit and disconnect —
 * and exits 0. A second signal, or the deadline, exits 1 at once: whatever was not committed is redelivered.
 *
 * The last resort for a bug: an exception nothing caught, or a rejection nothing handled, is logged and the app
 * drains the same way, then exits 1 (so that it is restarted) — instead of Node dying at once mid-send, with work
 * in flight neither finished nor committed.
 */
export function exitOnSignals(
  app: string,
  target: Closable,
  deadlineMs: number,
  log: LifecycleLog = plainLifecycleLog(app),
): void {
  let closing = false;
  const shutdown = (why: string, exitCode: 0 | 1) => {
    closing = true;
    log.info(`${why}; finishing in-flight work (up to ${deadlineMs} ms)`);
    setTimeout(() => {
      log.error(`did not shut down within ${deadlineMs} ms; exiting`);
      process.exit(1);
    }, deadlineMs).unref();
    target.close().then(
      () => {
        log.info('stopped');
        process.exit(exitCode);
      },
      (error: unknown) => {
        log.error(`shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      log.error(`received ${signal} again; exiting now`);
      process.exit(1);
    }
    shutdown(`received ${signal}`, 0);
  };
  const onBug = (kind: string) => (error: unknown) => {
    const detail = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error);
    log.error(`${kind}: ${detail}`);
    if (!closing) shutdown(`${kind}; draining, then exiting 1`, 1);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', onBug('uncaught exception'));
  process.on('unhandledRejection', onBug('unhandled rejection'));
}
