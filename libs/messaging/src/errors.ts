import { InvalidEventError } from '@app/contracts';

/**
 * A failure that will fail again with the same input (bad address, domain rule): never retried.
 * Consumers throw it, or a subclass, to say so; anything else counts as retriable.
 */
export class PermanentError extends Error {
  override readonly name: string = 'PermanentError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A failure expected to pass (connection refused, 4xx from SMTP, timeout): retried with backoff. */
export class RetriableError extends Error {
  override readonly name: string = 'RetriableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Not this message's fault: the event is fine, but what it needs is not there now — another consumer holds its
 * claim, a dependency (Redis, a database) cannot be reached. Retried without using up an attempt, for as long as
 * the retry deadline allows; `retryAfterMs`, when known (a lease that ends then), is when to look again.
 */
export class UnavailableError extends RetriableError {
  override readonly name: string = 'UnavailableError';
  readonly retryAfterMs?: number;
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

export type FailureKind = 'permanent' | 'retriable';

/** Classification by type, never by message text. Unknown errors are retriable: losing work is worse than retrying. */
export function classifyError(error: unknown): FailureKind {
  if (error instanceof PermanentError || error instanceof InvalidEventError) return 'permanent';
  return 'retriable';
}

export function errorClassOf(error: unknown): string {
  return error instanceof Error ? error.name || error.constructor.name : typeof error;
}

export function errorMessageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
