import {
  Context,
  context,
  propagation,
  ROOT_CONTEXT,
  Span,
  SpanKind,
  SpanStatusCode,
  TextMapGetter,
  trace,
} from '@opentelemetry/api';
import type { IHeaders } from 'kafkajs';
import { errorMessageOf } from './errors';
import { headerString } from './failure-headers';

/**
 * Trace context across Kafka: W3C `traceparent`/`tracestate` headers (the CloudEvents distributed-tracing
 * extension's names). Spans go through the OpenTelemetry API only: without an SDK started (tests that do not look,
 * tools) they cost nothing, and the headers still carry whatever context is active.
 */
const tracer = trace.getTracer('kafka-nest.messaging');

const headerGetter: TextMapGetter<IHeaders | undefined> = {
  keys: (carrier) => Object.keys(carrier ?? {}),
  get: (carrier, key) => headerString(carrier, key),
};

/** Records a failure on a span: the exception event and an error status. */
function markFailed(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : new Error(errorMessageOf(error)));
  span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessageOf(error) });
}

/** Adds the active (or given) trace context to a record's headers: `traceparent`, `tracestate`. */
export function injectTraceContext(headers: Record<string, string>, from: Context = context.active()): void {
  propagation.inject(from, headers);
}

/** The trace context a message carries (root when none). */
export function extractTraceContext(headers: IHeaders | undefined): Context {
  return propagation.extract(ROOT_CONTEXT, headers, headerGetter);
}

/** Runs `work` in the trace context a message carries, so what it logs before and after its span names the trace. */
export function withMessageTrace<T>(headers: IHeaders | undefined, work: () => T): T {
  return context.with(extractTraceContext(headers), work);
}

/**
 * One PRODUCER span per record, child of the context the record carries (an outbox row keeps the request's); the
 * record leaves with the span's own context in its headers. `settle` ends the spans with the send's outcome.
 */
export function startPublishSpans<
  R extends { topic: string; key?: string | null; headers?: Record<string, string | Buffer> },
>(records: readonly R[]): { records: R[]; settle: (error?: unknown) => void } {
  const spans: Span[] = [];
  const traced = records.map((record) => {
    const parent = extractTraceContext(record.headers);
    const span = tracer.startSpan(
      `send ${record.topic}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'kafka',
          'messaging.operation.type': 'send',
          'messaging.destination.name': record.topic,
          ...(record.key ? { 'messaging.kafka.message.key': record.key } : {}),
          ...(record.headers?.ce_id ? { 'messaging.message.id': record.headers.ce_id.toString() } : {}),
          ...(record.headers?.ce_type ? { 'cloudevents.event_type': record.headers.ce_type.toString() } : {}),
        },
      },
      parent,
    );
    spans.push(span);
    const headers: Record<string, string | Buffer> = { ...(record.headers ?? {}) };
    const own: Record<string, string> = {};
    injectTraceContext(own, trace.setSpan(parent, span));
    return { ...record, headers: { ...headers, ...own } };
  });
  return {
    records: traced,
    settle: (error?: unknown) => {
      for (const span of spans) {
        if (error !== undefined) {
          markFailed(span, error);
        }
        span.end();
      }
    },
  };
}

export interface ConsumeSpanInfo {
  topic: string;
  partition: number;
  offset: string;
  consumerGroup: string;
  eventType?: string;
  eventId?: string;
  attempt: number;
}

/**
 * Runs a handler inside a CONSUMER span, child of the context the message carries: the work it does (SQL, SMTP,
 * the events it publishes) joins the producer's trace. A retry carries the same headers, so each attempt is one
 * more child of the same send.
 */
export async function withConsumeSpan<T>(
  headers: IHeaders | undefined,
  info: ConsumeSpanInfo,
  work: () => Promise<T>,
): Promise<T> {
  const parent = extractTraceContext(headers);
  const span = tracer.startSpan(
    `process ${info.topic}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'kafka',
        'messaging.operation.type': 'process',
        'messaging.destination.name': info.topic,
        'messaging.destination.partition.id': String(info.partition),
        'messaging.kafka.offset': Number(info.offset),
        'messaging.consumer.group.name': info.consumerGroup,
        'messaging.kafka.attempt': info.attempt,
        ...(info.eventId ? { 'messaging.message.id': info.eventId } : {}),
        ...(info.eventType ? { 'cloudevents.event_type': info.eventType } : {}),
      },
    },
    parent,
  );
  try {
    return await context.with(trace.setSpan(parent, span), work);
  } catch (error) {
    markFailed(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/**
 * A span around one piece of work under the active context: `client` for a call to another system (an SMTP send),
 * `internal` for a step of the app's own (an ffmpeg run).
 */
export async function withSpan<T>(
  name: string,
  attributes: Record<string, string | number | boolean>,
  work: () => Promise<T>,
  kind: 'client' | 'internal' = 'client',
): Promise<T> {
  const spanKind = kind === 'client' ? SpanKind.CLIENT : SpanKind.INTERNAL;
  return tracer.startActiveSpan(name, { kind: spanKind, attributes }, async (span) => {
    try {
      return await work();
    } catch (error) {
      markFailed(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}
