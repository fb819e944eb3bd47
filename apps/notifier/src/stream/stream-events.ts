import { EVENT_TYPES, Envelope, parseEvent, topicOf } from '@app/contracts';
import type { HistoryMessage } from '@app/messaging';
import { STREAM_TOPICS } from './positions';
import { NOT_AN_EVENT, StreamEvent } from './sse-client';

/** SSE event names: the types on the streamed topics without their version (`post.created`). */
export const STREAM_EVENT_NAMES: readonly string[] = EVENT_TYPES.filter((type) =>
  (STREAM_TOPICS as readonly string[]).includes(topicOf(type)),
).map(nameOf);

export function nameOf(type: string): string {
  return type.replace(/\.v\d+$/, '');
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

export function fromHistory({ topic, partition, offset, message }: HistoryMessage): StreamEvent {
  try {
    const event = parseEvent(message.value);
    return { topic, partition, offset, eventId: event.id, name: nameOf(event.type), data: serialise(event) };
  } catch {
    // Not a valid event: the live feed skipped it too; only the position moves on.
    return { topic, partition, offset, name: NOT_AN_EVENT, data: '{}' };
  }
}
