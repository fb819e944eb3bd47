import { z } from 'zod';
import { Envelope, EnvelopeSchema } from './envelope';
import { EmailRequestedV1 } from './events/email-requested.v1';
import { EmailSentV1 } from './events/email-sent.v1';
import { PostCreatedV1, PostDeletedV1, PostUpdatedV1 } from './events/post.v1';
import { UserRegisteredV1 } from './events/user-registered.v1';
import { VideoDeletedV1, VideoFailedV1, VideoProcessedV1, VideoProgressV1, VideoSubmittedV1 } from './events/video.v1';
import { Topic, Topics } from './topics';

/**
 * The one map from event type to its topic and payload schema. It drives `publish()`, the outbox,
 * consumer handler signatures, runtime validation at the consumer boundary and the JSON Schema export.
 */
export const EventRegistry = {
  'user.registered.v1': { topic: Topics.Users, schema: UserRegisteredV1, producer: 'users-api', key: 'user id' },
  'email.requested.v1': { topic: Topics.Emails, schema: EmailRequestedV1, producer: 'users-api', key: 'user id' },
  'email.sent.v1': { topic: Topics.EmailsSent, schema: EmailSentV1, producer: 'email-service', key: 'user id' },
  'video.submitted.v1': {
    topic: Topics.VideoProcessing,
    schema: VideoSubmittedV1,
    producer: 'users-api',
    key: 'video id',
  },
  'video.deleted.v1': {
    topic: Topics.VideoProcessing,
    schema: VideoDeletedV1,
    producer: 'users-api',
    key: 'video id',
  },
  'video.progress.v1': {
    topic: Topics.VideoProcessed,
    schema: VideoProgressV1,
    producer: 'video-processor',
    key: 'video id',
  },
  'video.processed.v1': {
    topic: Topics.VideoProcessed,
    schema: VideoProcessedV1,
    producer: 'video-processor',
    key: 'video id',
  },
  'video.failed.v1': {
    topic: Topics.VideoProcessed,
    schema: VideoFailedV1,
    producer: 'video-processor',
    key: 'video id',
  },
  'post.created.v1': { topic: Topics.Posts, schema: PostCreatedV1, producer: 'users-api', key: 'post id' },
  'post.updated.v1': { topic: Topics.Posts, schema: PostUpdatedV1, producer: 'users-api', key: 'post id' },
  'post.deleted.v1': { topic: Topics.Posts, schema: PostDeletedV1, producer: 'users-api', key: 'post id' },
} as const satisfies Record<string, { topic: Topic; schema: z.ZodType; producer: string; key: string }>;

export type EventType = keyof typeof EventRegistry;
export type PayloadOf<T extends EventType> = z.infer<(typeof EventRegistry)[T]['schema']>;
export type TopicOf<T extends EventType> = (typeof EventRegistry)[T]['topic'];
export type EventOf<T extends EventType> = Envelope<PayloadOf<T>> & { type: T };

export const EVENT_TYPES = Object.keys(EventRegistry) as EventType[];

export function isEventType(type: string): type is EventType {
  return Object.prototype.hasOwnProperty.call(EventRegistry, type);
}

export function topicOf<T extends EventType>(type: T): TopicOf<T> {
  return EventRegistry[type].topic;
}

/** Why a Kafka message could not be turned into a known, valid event. Never retried. */
export class InvalidEventError extends Error {
  override readonly name = 'InvalidEventError';
  constructor(
    readonly reason: 'malformed-json' | 'invalid-envelope' | 'unknown-type' | 'invalid-payload',
    message: string,
  ) {
    super(message);
  }
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 10)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

/** Validates a payload against its event schema; throws InvalidEventError('invalid-payload'). */
export function validatePayload<T extends EventType>(type: T, data: unknown): PayloadOf<T> {
  const result = EventRegistry[type].schema.safeParse(data);
  if (!result.success) {
    throw new InvalidEventError('invalid-payload', `${type} payload is invalid: ${describeIssues(result.error)}`);
  }
  return result.data as PayloadOf<T>;
}

/** Parses a Kafka message value into a validated event envelope of a known type. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

export function parseEvent(value: Buffer | string | null): EventOf<EventType> {
  if (value === null || value.length === 0) {
    throw new InvalidEventError('malformed-json', 'message has no value');
  }
  let text: string;
  try {
    // Strict: invalid UTF-8 is refused, not patched with U+FFFD (two different values must not read the same).
    text = typeof value === 'string' ? value : UTF8.decode(value);
  } catch {
    throw new InvalidEventError('malformed-json', `value is not valid UTF-8 (${value.length} bytes)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the value, which a log line must not carry (the dead letter keeps it).
    throw new InvalidEventError('malformed-json', `value is not JSON (${Buffer.byteLength(value)} bytes)`);
  }
  const envelope = EnvelopeSchema.safeParse(json);
  if (!envelope.success) {
    throw new InvalidEventError('invalid-envelope', `not a CloudEvents envelope: ${describeIssues(envelope.error)}`);
  }
  const { type } = envelope.data;
  if (!isEventType(type)) {
    throw new InvalidEventError('unknown-type', `unknown event type '${type}'`);
  }
  const data = validatePayload(type, envelope.data.data);
  return { ...envelope.data, type, data };
}

/** JSON Schema (draft 2020-12) of every event payload, for the AsyncAPI document and for consumers in other languages. */
export function eventJsonSchemas(target: 'draft-2020-12' | 'draft-7' = 'draft-2020-12'): Record<EventType, unknown> {
  return Object.fromEntries(
    EVENT_TYPES.map((type) => [type, z.toJSONSchema(EventRegistry[type].schema, { target })]),
  ) as Record<EventType, unknown>;
}
