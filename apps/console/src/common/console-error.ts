import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Response } from 'express';
import type { z } from 'zod';
import type { ErrorAnswer } from '../system/status';

/** A refusal with a stable code; every one reaches the client as ErrorAnswer (ConsoleErrorFilter). */
export class ConsoleError extends Error {
  override readonly name = 'ConsoleError';
  constructor(
    readonly status: 400 | 401 | 403 | 404,
    readonly code: string,
    message: string,
    readonly errors?: { field: string; message: string }[],
  ) {
    super(message);
  }
}

/** A query or body checked against its schema: the value, or a 400 naming each field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors = result.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: key, message: 'is not an allowed field' }))
      : [{ field: issue.path.map(String).join('.') || 'body', message: issue.message }],
  );
  throw new ConsoleError(400, 'VALIDATION.FAILED', 'Request validation failed', errors);
}

/** The same error shape as users-api's: the page reads one. */
@Catch()
export class ConsoleErrorFilter implements ExceptionFilter {
  private readonly log = new Logger('HTTP');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const body = this.toBody(exception);
    if (body.statusCode >= 500) this.log.error(exception instanceof Error ? exception : String(exception));
    if (body.statusCode === 401) response.setHeader('WWW-Authenticate', 'Bearer');
    response.status(body.statusCode).json(body);
  }

  private toBody(exception: unknown): ErrorAnswer {
    if (exception instanceof ConsoleError) {
      return {
        statusCode: exception.status,
        code: exception.code,
        message: exception.message,
        ...(exception.errors ? { errors: exception.errors } : {}),
      };
    }
    if (exception instanceof HttpException) {
      const statusCode = exception.getStatus();
      const cause = exception.cause as { type?: string } | undefined;
      if (statusCode === 400 && cause?.type === 'entity.parse.failed') {
        return { statusCode, code: 'REQUEST.MALFORMED_JSON', message: 'Request body is not valid JSON' };
      }
      return {
        statusCode,
        code: statusCode === 404 ? 'ROUTE.NOT_FOUND' : `HTTP.${statusCode}`,
        message: exception.message,
      };
    }
    // body-parser errors that reach the filter without an HttpException wrapper.
    const status = (exception as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return { statusCode: status, code: `HTTP.${status}`, message: (exception as Error).message };
    }
    return { statusCode: HttpStatus.INTERNAL_SERVER_ERROR, code: 'INTERNAL', message: 'Internal server error' };
  }
}
