import { EVENT_TYPES, Envelope, parseEvent, topicOf, Topics } from '@app/contracts';
import type { HistoryMessage } from '@app/messaging';
import { PUBLIC_TOPICS, StreamScope, USER_TOPICS } from './positions';
import { NOT_AN_EVENT, StreamEvent } from './sse-client';

const namesOn = (topics: readonly string[]): readonly string[] =>
  EVENT_TYPES.filter((type) => topics.includes(topicOf(type))).map(nameOf);

/** SSE event names: the types without their version (`post.created`). The public stream carries post events. */
export const PUBLIC_EVENT_NAMES: readonly string[] = namesOn(PUBLIC_TOPICS);
/** The per-user stream's: one user's video events (by `ownerId`) and sent emails (by `userId`). */
export const USER_EVENT_NAMES: readonly string[] = namesOn(USER_TOPICS);

export function nameOf(type: string): string {
  return type.replace(/\.v\d+$/, '');
}

/**
 * The one stream an event may be sent on (`StreamScope.name`): `public` for post events, `user:<id>` for a video
 * event of its `ownerId` or a sent email of its `userId`; undefined (no stream) for one without an owner.
 */
export function audienceOf(topic: string, data: unknown): StreamScope['name'] | undefined {
  if (PUBLIC_TOPICS.includes(topic)) return 'public';
  const fields = (typeof data === 'object' && data !== null ? data : {}) as { ownerId?: unknown; userId?: unknown };
  const owner = topic === Topics.EmailsSent ? fields.userId : fields.ownerId;
  return typeof owner === 'string' && owner.length > 0 ? `user:${owner}` : undefined;
}

export function serialise(event: Envelope & { type: string }): string {
  return JSON.stringify({
    id: event.id,
    type: event.type,
    time: event.time,
    subject: event.subject,
    correlationId: event.correlationid,
    data: event.data,
  });
}

export function toStreamEvent(
  event: Envelope & { type: string },
  at: { topic: string; partition: number; offset: number },
): StreamEvent {
  return {
    ...at,
    eventId: event.id,
    name: nameOf(event.type),
    audience: audienceOf(at.topic, event.data),
    data: serialise(event),
  };
}

export function fromHistory({ topic, partition, offset, message }: HistoryMessage): StreamEvent {
  try {
    return toStreamEvent(parseEvent(message.value), { topic, partition, offset });
  } catch {
    // Not a valid event: the live feed skipped it too; only the position moves on.
    return { topic, partition, offset, name: NOT_AN_EVENT, data: '{}' };
  }
}
