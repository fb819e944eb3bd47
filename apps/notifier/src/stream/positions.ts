import { Topics } from '@app/contracts';
import type { Positions } from '@app/messaging';

/** The topics the live feed consumes: every stream's topics. */
export const STREAM_TOPICS = [Topics.Posts, Topics.VideoProcessed, Topics.EmailsSent] as const;

/**
 * A stream's identity and the topics its ids cover (in that order). `public` carries post events; `user:<id>` carries
 * the video and email events of one user. An event id is valid only on the stream it was given out on.
 */
export interface StreamScope {
  name: 'public' | `user:${string}`;
  topics: readonly string[];
}

export const PUBLIC_TOPICS: readonly string[] = [Topics.Posts];
export const USER_TOPICS: readonly string[] = [Topics.VideoProcessed, Topics.EmailsSent];

export const PUBLIC_STREAM: StreamScope = { name: 'public', topics: PUBLIC_TOPICS };

export function userStream(userId: string): StreamScope {
  return { name: `user:${userId}`, topics: USER_TOPICS };
}

/**
 * Where a client stands in every partition of its stream's topics, i.e. the offset of the next message it has not
 * seen — `posts:15,7,3`. The signed event id (StreamIds) carries it, so any replica can resume a client by reading
 * the broker, and a restart loses nothing.
 */
export function encodePositions(positions: Positions, topics: readonly string[]): string {
  return topics.map((topic) => `${topic}:${(positions[topic] ?? []).join(',')}`).join(';');
}

export class BadEventIdError extends Error {
  override readonly name = 'BadEventIdError';
}

/** The positions of an id's text, which must name exactly `topics`, each once, in order. */
export function decodePositions(text: string, topics: readonly string[]): Positions {
  if (text.length > 4096) throw new BadEventIdError('is longer than any id this notifier gives out');
  const positions: Positions = {};
  const parts = text.split(';');
  for (const part of parts) {
    const match = /^([a-z0-9.-]+):(\d{1,15}(?:,\d{1,15})*)?$/.exec(part);
    if (!match) throw new BadEventIdError(`has a malformed part '${part.slice(0, 60)}'`);
    const [, topic, offsets] = match;
    if (!topics.includes(topic)) throw new BadEventIdError(`names topic '${topic}', which is not on this stream`);
    if (positions[topic]) throw new BadEventIdError(`names topic '${topic}' twice`);
    positions[topic] = offsets ? offsets.split(',').map(Number) : [];
  }
  if (parts.length !== topics.length) throw new BadEventIdError(`must name ${topics.join(', ')}`);
  return positions;
}

export function copyPositions(positions: Positions, topics?: readonly string[]): Positions {
  return Object.fromEntries(
    Object.entries(positions)
      .filter(([topic]) => topics === undefined || topics.includes(topic))
      .map(([topic, offsets]) => [topic, [...offsets]]),
  );
}
