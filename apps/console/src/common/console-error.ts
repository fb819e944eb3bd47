import type { z } from 'zod';
import { AppError, FieldError } from '@app/runtime';

/**
 * A refusal with a stable code. An AppError, so the one error filter of every app (libs/runtime) answers it in the
 * shape the page reads (ErrorAnswer), 401's WWW-Authenticate included.
 */
export class ConsoleError extends AppError {
  override readonly name = 'ConsoleError';
  constructor(
    readonly status: 400 | 401 | 403 | 404,
    readonly code: string,
    message: string,
    override readonly details?: readonly FieldError[],
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
