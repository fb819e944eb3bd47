import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import { CORRELATION_ID } from '@app/contracts';
import { isOperationsPath, serializeError } from '@app/telemetry';
import type { Logger as Pino } from 'pino';
import type { PinoLogger } from 'nestjs-pino';
import { Options, pinoHttp } from 'pino-http';

export const CORRELATION_HEADER = 'x-correlation-id';

/** The caller's correlation id when it is a safe token, else a new one. */
export function correlationIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && CORRELATION_ID.test(header) ? header : randomUUID();
}

/** nginx's "client closed request": the status the request log and the HTTP metrics give an aborted request. */
export const CLIENT_CLOSED_REQUEST = 499;

export interface RequestOutcome {
  status: number;
  /** The client closed the connection before its answer (status 499). */
  aborted: boolean;
  /** A stream the client left after its answer had started (an SSE stream, a seek in a video): no latency to time. */
  left: boolean;
}

/**
 * How a request ended, as the request log and the HTTP metrics tell it once its response finished or closed: the
 * answer's status; 408 when Node cut it off at HTTP_REQUEST_TIMEOUT_MS; or 499 (`aborted`) when the client closed
 * the connection before the answer was complete and either its own request had not arrived whole (an upload cut off
 * mid-body) or no answer had started. The status the route would have answered (202 for an upload) is never
 * reported for a request that did not get it.
 */
export function requestOutcome(request: IncomingMessage, response: ServerResponse): RequestOutcome {
  // Past HTTP_REQUEST_TIMEOUT_MS Node itself writes a bare 408 on the socket and destroys it with this error.
  if ((request.socket?.errored as { code?: string } | null)?.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { status: 408, aborted: false, left: false };
  }
  if (response.writableFinished) return { status: response.statusCode, aborted: false, left: false };
  if (!request.complete || !response.headersSent) return { status: CLIENT_CLOSED_REQUEST, aborted: true, left: false };
  return { status: response.statusCode, aborted: false, left: true };
}

/**
 * Request logging for every app (pino-http under nestjs-pino): each request gets a correlation id — the caller's
 * `X-Correlation-Id` when it is a safe token, else a new one — echoed in the response and bound to every line logged
 * while it is handled. One line per finished request (method, path, status, time; never headers or bodies), at
 * `error` for a 5xx; a request the client aborted says so, with status 499 (requestOutcome). Health probes and
 * metric scrapes are not logged.
 */
export function httpLogging(logger: Pino): Options {
  return {
    logger,
    genReqId: (request: IncomingMessage, response: ServerResponse) => {
      const id = correlationIdOf(request.headers[CORRELATION_HEADER]);
      response.setHeader(CORRELATION_HEADER, id);
      return id;
    },
    customAttributeKeys: { reqId: 'correlationId' },
    quietReqLogger: true,
    autoLogging: { ignore: (request) => isOperationsPath(request.url) },
    customLogLevel: (_request, response, error) => (error || response.statusCode >= 500 ? 'error' : 'info'),
    customSuccessMessage: (request, response, took) => {
      const { status, aborted } = requestOutcome(request, response);
      return aborted
        ? `${request.method} ${request.url} ${status} aborted by the client after ${Math.round(took)} ms`
        : `${request.method} ${request.url} ${status} ${Math.round(took)} ms`;
    },
    customErrorMessage: (request, response, error) =>
      `${request.method} ${request.url} ${response.statusCode} failed: ${error.message}`,
    serializers: {
      req: (request: { method?: string; url?: string }) => ({ method: request.method, url: request.url }),
      // pino-http hands over its own summary of the response; the outcome is read from the response itself.
      res: (response: { raw: ServerResponse }) => {
        const { status, aborted } = requestOutcome(response.raw.req, response.raw);
        return aborted ? { statusCode: status, aborted } : { statusCode: status };
      },
      // pino-http would set its own error serializer, which copies every property of the error; it hands over its
      // summary of the error, with the error itself as `raw`.
      err: (error: { raw?: unknown }) => serializeError(error.raw ?? error),
    },
  };
}

type Middleware = (request: IncomingMessage, response: ServerResponse, next: () => void) => void;

/**
 * `log`: the request logger (httpLogging), mounted before the body parsers so a request they refuse still has its
 * correlation id and its line. `bind`: mounted after them (a parser's stream callbacks would lose the context); every
 * line logged while the request is handled, Nest's logger included, then carries the request's correlation id.
 */
export function requestLogging(logger: Pino, nestLogger: PinoLogger): { log: Middleware; bind: Middleware } {
  return {
    log: pinoHttp(httpLogging(logger)),
    bind: (request, _response, next) =>
      nestLogger.runInContext(next, { bindings: { correlationId: (request as { id?: unknown }).id } }),
  };
}

/** The request's correlation id (see httpLogging): what its events carry as `correlationid`. */
export const CorrelationId = createParamDecorator((_: unknown, context: ExecutionContext): string => {
  const request = context.switchToHttp().getRequest<IncomingMessage & { id?: unknown }>();
  return typeof request.id === 'string' ? request.id : correlationIdOf(request.headers[CORRELATION_HEADER]);
});
