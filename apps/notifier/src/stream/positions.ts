import { Topics } from '@app/contracts';
import type { Positions } from '@app/messaging';

/** The topics the notifier streams; the order is the order in an event id. */
export const STREAM_TOPICS = [Topics.Posts, Topics.VideoProcessed, Topics.EmailsSent] as const;

/**
 * An SSE event id: where the client stands in every partition of the streamed topics, i.e. the offset of the next
 * message it has not seen — `posts:15,7,3;video-processed:4,0,2;emails-sent:1,0,0`. Any replica can resume a client from it by
 * reading the broker, so a restart loses nothing.
 */
export function encodePositions(positions: Positions): string {
  return STREAM_TOPICS.map((topic) => `${topic}:${(positions[topic] ?? []).join(',')}`).join(';');
}

export class BadEventIdError extends Error {
  override readonly name = 'BadEventIdError';
}

export function decodePositions(id: string): Positions {
  if (id.length > 4096) throw new BadEventIdError('is longer than any id this notifier gives out');
  const positions: Positions = {};
  for (const part of id.split(';')) {
    const match = /^([a-z0-9.-]+):(\d{1,15}(?:,\d{1,15})*)?$/.exec(part);
    if (!match) throw new BadEventIdError(`has a malformed part '${part.slice(0, 60)}'`);
    const [, topic, offsets] = match;
    if (!(STREAM_TOPICS as readonly string[]).includes(topic))
      throw new BadEventIdError(`names unknown topic '${topic}'`);
    positions[topic] = offsets ? offsets.split(',').map(Number) : [];
  }
  return positions;
}

export function copyPositions(positions: Positions): Positions {
  return Object.fromEntries(Object.entries(positions).map(([topic, offsets]) => [topic, [...offsets]]));
}
