import { randomUUID } from 'node:crypto';
import { z } from 'zod';

/**
 * CloudEvents 1.0 structured-mode envelope (JSON value), plus the `correlationid` extension.
 * https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md
 */
export const EnvelopeSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.uuid(),
  source: z.string().min(1).max(255),
  type: z.string().regex(/^[a-z][a-z0-9]*(\.[a-z][a-z0-9-]*)*\.v[0-9]+$/, { error: 'must be a versioned type' }),
  time: z.iso.datetime({ offset: true }),
  datacontenttype: z.literal('application/json'),
  subject: z.string().max(255).optional(),
  correlationid: z.string().min(1).max(255),
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
