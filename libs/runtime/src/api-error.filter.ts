import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { AppError, FieldError } from './app-error';

/** The one JSON error shape of every app (the HTTP boundary's own refusals have it too). */
export interface ApiErrorBody {
  statusCode: number;
  code: string;
  message: string;
  errors?: readonly FieldError[];
}

const HTTP_CODES: Record<number, string> = {
  400: 'REQUEST.BAD',
  404: 'ROUTE.NOT_FOUND',
  405: 'REQUEST.METHOD_NOT_ALLOWED',
  413: 'REQUEST.TOO_LARGE',
  415: 'REQUEST.UNSUPPORTED_MEDIA_TYPE',
  429: 'REQUEST.RATE_LIMITED',
};

/**
 * Maps every error to ApiErrorBody: domain errors by their code, framework errors by status (an unknown path is
 * `404 ROUTE.NOT_FOUND`), the rest to 500. startApp installs it in every app; a filter an app provides itself
 * (APP_FILTER) takes precedence.
 */
@Catch()
export class ApiErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const body = this.toBody(exception);
    // An AppError's 5xx is an answer chosen on purpose (a full notifier replica): its request line says enough.
    if (body.statusCode >= 500 && !(exception instanceof AppError)) {
      this.logger.error(exception instanceof Error ? exception : String(exception));
    }
    if (body.statusCode === 401) response.setHeader('WWW-Authenticate', 'Bearer');
    if (exception instanceof AppError) {
      for (const [name, value] of Object.entries(exception.headers ?? {})) response.setHeader(name, value);
    }
    response.status(body.statusCode).json(body);
  }

  private toBody(exception: unknown): ApiErrorBody {
    if (exception instanceof AppError) {
      return {
        statusCode: exception.status,
        code: exception.code,
        message: exception.message,
        ...(exception.details ? { errors: exception.details } : {}),
      };
    }
    if (exception instanceof HttpException) {
      const statusCode = exception.getStatus();
      const cause = exception.cause as { type?: string } | undefined;
      if (statusCode === 400 && cause?.type === 'entity.parse.failed') {
        return { statusCode, code: 'REQUEST.MALFORMED_JSON', message: 'Request body is not valid JSON' };
      }
      if (statusCode === 429) {
        // The throttler's own text names its class; the answer says what to do.
        return {
          statusCode,
          code: HTTP_CODES[429],
          message: 'Too many requests from this address; try again in a minute',
        };
      }
      return { statusCode, code: HTTP_CODES[statusCode] ?? `HTTP.${statusCode}`, message: exception.message };
    }
    // body-parser errors that reach the filter without an HttpException wrapper.
    const status = (exception as { status?: number; type?: string }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const type = (exception as { type?: string }).type;
      if (type === 'entity.parse.failed') {
        return { statusCode: 400, code: 'REQUEST.MALFORMED_JSON', message: 'Request body is not valid JSON' };
      }
      return {
        statusCode: status,
        code: HTTP_CODES[status] ?? `HTTP.${status}`,
        message: (exception as Error).message,
      };
    }
    return { statusCode: HttpStatus.INTERNAL_SERVER_ERROR, code: 'INTERNAL', message: 'Internal server error' };
  }
}
