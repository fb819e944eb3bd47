import { AppError, type FieldError } from '@app/runtime';

// The base errors live with the filter that answers them, in libs/runtime; users-api's code imports them from here.
export { AppError, ValidationFailedError } from '@app/runtime';
export type { FieldError } from '@app/runtime';

/** An error of one fixed status: a stable code, a message, and per-field details where they help. */
abstract class CodedError extends AppError {
  constructor(
    readonly code: string,
    message: string,
    override readonly details?: readonly FieldError[],
  ) {
    super(message);
  }
}

export class ConflictError extends CodedError {
  readonly status = 409;
  override readonly name = 'ConflictError';
}

export class NotFoundError extends CodedError {
  readonly status = 404;
  override readonly name = 'NotFoundError';
}

/** The request is well-formed but refers to something that does not exist (a post's author). */
export class UnprocessableError extends CodedError {
  readonly status = 422;
  override readonly name = 'UnprocessableError';
}

/** A conditional request's precondition (If-Match) does not hold: 412, or 428 when it is required but missing. */
export class PreconditionError extends AppError {
  override readonly name = 'PreconditionError';
  constructor(
    readonly status: 412 | 428,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** No credentials where they are needed: 401 (with `WWW-Authenticate: Bearer`). */
export class UnauthorizedError extends CodedError {
  readonly status = 401;
  override readonly name = 'UnauthorizedError';
}

/** Credentials that do not allow this, or an operation switched off by config: 403. */
export class ForbiddenError extends CodedError {
  readonly status = 403;
  override readonly name = 'ForbiddenError';
}
