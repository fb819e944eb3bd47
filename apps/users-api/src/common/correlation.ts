import { randomUUID } from 'node:crypto';

export const CORRELATION_HEADER = 'x-correlation-id';
const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's correlation id when it is a safe token, else a new one; echoed in the response, carried by events. */
export function correlationIdOf(header: string | undefined): string {
  return header && CORRELATION_ID.test(header) ? header : randomUUID();
}
