/**
 * An error with a stable machine-readable code and its HTTP status; ApiErrorFilter turns it into the one error shape
 * of every app.
 */
export abstract class AppError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  readonly details?: readonly FieldError[];
  /** Headers the answer carries (`Retry-After` of a 429). */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface FieldError {
  field: string;
  message: string;
}

export class ValidationFailedError extends AppError {
  readonly code = 'VALIDATION.FAILED';
  readonly status = 400;
  override readonly name = 'ValidationFailedError';
  constructor(override readonly details: readonly FieldError[]) {
    super('Request validation failed');
  }
}
