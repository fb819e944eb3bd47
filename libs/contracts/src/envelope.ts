import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { singleLine } from './text';

/**
 * A correlation id: a token of letters, digits and `. _ : -`, at most 128 long. The HTTP layer takes a caller's
 * `X-Correlation-Id` only in this form, and a consumer refuses an event whose `correlationid` is not: it travels
 * into logs and mail headers, where a line break would start a new line or header.
 */
export const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * CloudEvents 1.0 structured-mode envelope (JSON value), plus the `correlationid` extension.
 * https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md
 */
export const EnvelopeSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.uuid(),
  source: singleLine(1, 255),
  type: z.string().regex(/^[a-z][a-z0-9]*(\.[a-z][a-z0-9-]*)*\.v[0-9]+$/, { error: 'must be a versioned type' }),
  time: z.iso.datetime({ offset: true }),
  datacontenttype: z.literal('application/json'),
  subject: singleLine(1, 255).optional(),
  correlationid: z.string().regex(CORRELATION_ID, {
    error: 'must be 1 to 128 letters, digits or . _ : - (no spaces or line breaks)',
  }),
  data: z.unknown(),
});

export type Envelope<T = unknown> = Omit<z.infer<typeof EnvelopeSchema>, 'data'> & { data: T };

export const CONTENT_TYPE_CLOUDEVENTS = 'application/cloudevents+json; charset=utf-8';

export interface EnvelopeInput<T> {
  type: string;
  source: string;
  data: T;
  subject?: string;
  correlationId?: string;
  id?: string;
  time?: Date;
}

export function createEnvelope<T>(input: EnvelopeInput<T>): Envelope<T> {
  const id = input.id ?? randomUUID();
  return {
    specversion: '1.0',
    id,
    source: input.source,
    type: input.type,
    time: (input.time ?? new Date()).toISOString(),
    datacontenttype: 'application/json',
    ...(input.subject === undefined ? {} : { subject: input.subject }),
    correlationid: input.correlationId ?? id,
    data: input.data,
  };
}
