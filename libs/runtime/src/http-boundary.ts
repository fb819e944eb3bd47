import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseContentType } from 'content-type';
import helmet from 'helmet';

type Middleware = (request: IncomingMessage, response: ServerResponse, next: (error?: unknown) => void) => void;

/** A route whose body the app streams itself (a multipart upload), with its own type, size and time limits. */
export interface StreamedBodyRoute {
  method: string;
  path: RegExp;
}

export interface HttpBoundaryOptions {
  /** Longest the body of a JSON request may take to arrive, from its first byte of headers. */
  bodyTimeoutMs: number;
  /** Largest JSON body, in bytes. */
  jsonLimitBytes: number;
  streamedBodies: readonly StreamedBodyRoute[];
}

/** The error shape every app answers with: status, a stable code, a sentence. */
function refuse(response: ServerResponse, statusCode: number, code: string, message: string): void {
  if (response.headersSent) return;
  // No `Connection: close`: Node would close at once with the rest of the body unread, and the client could see a
  // reset instead of this answer. endUnreadBodies drains a little of it, then cuts.
  response.statusCode = statusCode;
  response.setHeader('Content-Type', 'application/json; charset=utf-8');
  response.end(JSON.stringify({ statusCode, code, message }));
}

const hasBody = (request: IncomingMessage) =>
  request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;

const pathOf = (request: IncomingMessage) => (request.url ?? '/').split('?')[0];

function streamed(request: IncomingMessage, routes: readonly StreamedBodyRoute[]): boolean {
  return routes.some((route) => route.method === request.method && route.path.test(pathOf(request)));
}

/** After an early answer, how much more of a refused body is read and dropped, and for how long, before the cut. */
const DRAIN_BYTES = 1024 * 1024;
const DRAIN_MS = 2000;

/**
 * When an answer goes out before the request's body was read to its end (a 413, 415 or 408, an upload refused by
 * its content), the rest is read and dropped for a moment — a client still sending gets to read the answer instead
 * of a connection reset — and the connection is cut after 1 MiB or 2 s: a client cannot make the server read a
 * 100 MB body it already refused.
 */
export function endUnreadBodies(): Middleware {
  return (request, response, next) => {
    response.on('finish', () => {
      if (request.complete || request.destroyed) return;
      let drained = 0;
      const cut = () => {
        clearTimeout(timer);
        if (!request.complete) request.destroy();
      };
      const timer = setTimeout(cut, DRAIN_MS);
      timer.unref();
      request.on('data', (chunk: Buffer) => {
        drained += chunk.length;
        if (drained > DRAIN_BYTES) cut();
      });
      request.once('end', () => clearTimeout(timer));
      request.resume();
    });
    next();
  };
}

/**
 * Only JSON in UTF-8: a request with a body must declare `application/json`, with charset utf-8 or none; anything
 * else is 415 before a byte of it is parsed. Form posts (which any web page can send cross-origin without a
 * preflight) and other charsets (UTF-7 smuggles quotes past filters that read raw bytes) never reach a handler.
 * Streamed routes (uploads) check their own types.
 */
export function requireJsonBodies(options: HttpBoundaryOptions): Middleware {
  return (request, response, next) => {
    if (!hasBody(request) || streamed(request, options.streamedBodies)) return next();
    const header = request.headers['content-type'];
    let accepted: boolean;
    try {
      const { type, parameters } = parseContentType(header ?? '');
      const charset = parameters.charset?.toLowerCase();
      accepted = type === 'application/json' && (charset === undefined || charset === 'utf-8');
    } catch {
      accepted = false;
    }
    if (!accepted) {
      refuse(
        response,
        415,
        'REQUEST.UNSUPPORTED_MEDIA_TYPE',
        `Send the body as application/json in UTF-8 (got ${header ? JSON.stringify(header.slice(0, 100)) : 'no Content-Type'})`,
      );
      return;
    }
    // Refused on its declared length, before a byte is read (the JSON parser reads a refused body to its end first).
    const limit = options.jsonLimitBytes;
    const tooLarge = () =>
      refuse(response, 413, 'REQUEST.TOO_LARGE', `The body is larger than the ${limit} bytes this route accepts`);
    if (Number(request.headers['content-length'] ?? 0) > limit) return tooLarge();
    // Without a declared length (chunked), the parser stops keeping bytes at the limit, and the body deadline ends
    // the connection if the sender goes on.
    next();
  };
}

/**
 * A JSON body must arrive whole within the deadline (a client trickling a byte a second holds a connection for
 * nothing); past it the answer is 408 and the connection ends. Streamed routes have the server's request timeout.
 */
export function bodyDeadline(options: HttpBoundaryOptions): Middleware {
  return (request, response, next) => {
    if (!hasBody(request) || streamed(request, options.streamedBodies) || request.complete) return next();
    const timer = setTimeout(() => {
      if (request.complete) return;
      refuse(response, 408, 'REQUEST.TIMEOUT', `The request body did not arrive within ${options.bodyTimeoutMs} ms`);
      request.destroy();
    }, options.bodyTimeoutMs);
    timer.unref();
    const clear = () => clearTimeout(timer);
    request.once('end', clear);
    request.once('close', clear);
    response.once('finish', clear);
    next();
  };
}

/**
 * Security headers, configured once for every app (helmet): no `X-Powered-By`, `nosniff`, no framing, no referrer
 * leak, HSTS, and a Content-Security-Policy that allows nothing — right for JSON; the HTML pages (the console, the
 * API documents) set their own, stricter-than-default policy on their routes.
 */
export function securityHeaders(): Middleware {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { 'default-src': ["'none'"], 'frame-ancestors': ["'none'"], 'base-uri': ["'none'"] },
    },
    crossOriginResourcePolicy: { policy: 'same-site' },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
  });
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * After the JSON parser: a body that is not valid UTF-8 is refused (400), not read with replacement characters (the
 * app is created with `rawBody`, so the parsed body's bytes are at hand).
 */
export function strictUtf8(request: IncomingMessage, response: ServerResponse, next: (error?: unknown) => void): void {
  const raw = (request as IncomingMessage & { rawBody?: Buffer }).rawBody;
  if (raw) {
    try {
      UTF8.decode(raw);
    } catch {
      refuse(response, 400, 'REQUEST.BAD', 'Request body is not valid UTF-8');
      return;
    }
  }
  next();
}
