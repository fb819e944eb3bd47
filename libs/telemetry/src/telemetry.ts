import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { NoopSpanProcessor, SpanProcessor } from '@opentelemetry/sdk-trace';

/** Probes and scrapes: requests no one wants traced or logged. */
export function isOperationsPath(url: string | undefined): boolean {
  return /^\/(health(\/|$|\?)|metrics($|\?))/.test(url ?? '');
}

let started: NodeSDK | undefined;

/** Whether spans are exported anywhere: an OTLP endpoint or an explicit exporter was given. */
export function tracesExported(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false;
  if (env.OTEL_TRACES_EXPORTER) return env.OTEL_TRACES_EXPORTER !== 'none';
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * OpenTelemetry for one app, configured the way the specification's `OTEL_*` variables say (endpoint, protocol —
 * `http/protobuf`, `http/json`, `grpc` — sampler, service name, resource attributes). Traces are exported only when
 * an OTLP endpoint or `OTEL_TRACES_EXPORTER` is given; without one, spans still give every log line and every Kafka
 * message its trace context. Metrics stay on `/metrics` (Prometheus) and logs on stdout, so their OTLP exporters
 * are off unless asked for. Instruments HTTP (server and client), Express routes and pg; Kafka spans come from the
 * messaging lib, the outbox relay's included. Call before the app is created, once per process.
 */
export function startTelemetry(serviceName: string, options: { spanProcessors?: SpanProcessor[] } = {}): NodeSDK {
  if (started) return started;
  const env = process.env;
  env.OTEL_SERVICE_NAME ??= serviceName;
  env.OTEL_METRICS_EXPORTER ??= 'none';
  env.OTEL_LOGS_EXPORTER ??= 'none';
  // Not exported, spans are still made (and dropped): log lines and Kafka messages carry their trace context.
  const spanProcessors = options.spanProcessors ?? (tracesExported(env) ? undefined : [new NoopSpanProcessor()]);
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME,
    ...(spanProcessors ? { spanProcessors } : {}),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => isOperationsPath(request.url),
      }),
      new ExpressInstrumentation(),
      new PgInstrumentation({ enhancedDatabaseReporting: false }),
    ],
  });
  sdk.start();
  started = sdk;
  return sdk;
}

/** Flushes and stops the SDK (on shutdown, so the last spans are exported), waiting at most `timeoutMs`. */
export async function stopTelemetry(timeoutMs = 3000): Promise<void> {
  const sdk = started;
  started = undefined;
  if (!sdk) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    sdk.shutdown().catch(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer);
}
