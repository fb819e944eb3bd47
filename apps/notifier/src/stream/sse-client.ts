import type { Response } from 'express';
import type { Positions } from '@app/messaging';
import type { StreamScope } from './positions';

/** One event as the stream sends it. */
export interface StreamEvent {
  topic: string;
  partition: number;
  offset: number;
  /** The event's own id (absent for a message that is not an event). */
  eventId?: string;
  /** SSE event name: the event type without its version (`post.created`). */
  name: string;
  /** The one stream it may be sent on (`public`, `user:<id>`); undefined: none. */
  audience?: StreamScope['name'];
  /** JSON: the event's id, type, time, subject and data. */
  data: string;
}

export type DropReason = 'overflow';

/** Whether the client, standing at `positions`, has passed another copy of this event (the same event id). */
export type RepeatCheck = (event: StreamEvent, positions: Positions) => boolean;

/** A message the broker holds that is not a valid event: it moves a client's position on and is not sent. */
export const NOT_AN_EVENT = '(invalid)';

/** An event id for positions on this client's stream (signed: StreamKeys). */
export type IdOf = (positions: Positions) => string;

/**
 * One connected stream. Every event passes `offer`: one on a topic the stream does not cover is ignored, and so is
 * one the client has already passed (by its positions); one meant for another stream, or of a type it did not ask
 * for, only moves its position on, and so does one whose event id it has passed at another offset (a relay's
 * re-send). While the client catches up from the
 * broker, live events wait in its queue. Writes respect the socket's backpressure; the queue of events waiting
 * for a slow client is bounded, and a client that overflows it is told and disconnected — it can resume by id.
 */
export class SseClient {
  private readonly queue: { id: string; text: string }[] = [];
  /** The id of the last frame handed to the socket: what a client that read everything so far holds. */
  private written: string;
  private readonly held: StreamEvent[] = [];
  private catchingUp = false;
  closed = false;
  sent = 0;
  /** Events not sent because the client had passed the same event id at another offset. */
  repeats = 0;

  constructor(
    private readonly response: Response,
    private readonly stream: StreamScope,
    private readonly idOf: IdOf,
    private positions: Positions,
    private readonly types: ReadonlySet<string> | undefined,
    private readonly maxQueue: number,
    private readonly onDrop: (client: SseClient, reason: DropReason) => void,
    private readonly isRepeat: RepeatCheck = () => false,
  ) {
    this.written = idOf(positions);
    response.on('drain', () => this.flush());
  }

  get lastEventId(): string {
    return this.idOf(this.positions);
  }

  /** Live events are held from now until `goLive`: the history read fills the gap first. */
  holdLive(): void {
    this.catchingUp = true;
  }

  /** Replaces where the client stands (a resume that reaches too far back starts again from now). */
  moveTo(positions: Positions): void {
    this.positions = positions;
  }

  /** Sends what was held during the catch-up (what the history already sent is skipped) and goes live. */
  goLive(): void {
    this.catchingUp = false;
    for (const event of this.held.splice(0)) this.deliver(event);
  }

  /** A live event. */
  offer(event: StreamEvent): void {
    if (this.closed) return;
    if (this.catchingUp) {
      this.held.push(event);
      if (this.held.length > this.maxQueue) this.drop('overflow');
      return;
    }
    this.deliver(event);
  }

  /** An event from the history read, or a held live one. */
  deliver(event: StreamEvent): void {
    if (this.closed || !this.stream.topics.includes(event.topic)) return;
    const partitions = (this.positions[event.topic] ??= []);
    if (event.offset < (partitions[event.partition] ?? 0)) return;
    const repeat = event.eventId !== undefined && this.isRepeat(event, this.positions);
    partitions[event.partition] = event.offset + 1;
    if (event.name === NOT_AN_EVENT || event.audience !== this.stream.name) return;
    if (this.types && !this.types.has(event.name)) return;
    if (repeat) {
      this.repeats += 1;
      return;
    }
    const id = this.lastEventId;
    this.send(id, frame({ id, event: event.name, data: event.data }));
    this.sent += 1;
  }

  /** A control message (ready, resync, overflow), with the client's current id so a reconnect resumes from it. */
  control(event: string, data: unknown): void {
    const id = this.lastEventId;
    this.send(id, frame({ id, event, data: JSON.stringify(data) }));
  }

  comment(text: string): void {
    if (!this.closed && this.queue.length === 0 && !this.response.writableNeedDrain) {
      this.response.write(`: ${text}\n\n`);
    }
  }

  get queued(): number {
    return this.queue.length + this.held.length;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.held.length = 0;
    this.response.end();
  }

  private send(id: string, text: string): void {
    if (this.closed) return;
    if (this.queue.length > 0 || this.response.writableNeedDrain) {
      this.queue.push({ id, text });
      if (this.queue.length > this.maxQueue) this.drop('overflow');
      return;
    }
    this.write(id, text);
  }

  private write(id: string, text: string): void {
    this.written = id;
    this.response.write(text);
  }

  private flush(): void {
    while (this.queue.length > 0 && !this.response.writableNeedDrain && !this.closed) {
      const next = this.queue.shift()!;
      this.write(next.id, next.text);
    }
  }

  private drop(reason: DropReason): void {
    if (this.closed) return;
    const lastEventId = this.written;
    this.queue.length = 0;
    this.held.length = 0;
    // Best effort: a client that does not read will not see it, but one that merely fell behind will. No `id:` line:
    // the events still queued are dropped, so the client resumes from the last one it actually got.
    this.response.write(
      `event: overflow\ndata: ${JSON.stringify({ reason: `more than ${this.maxQueue} events waited for this client`, lastEventId })}\n\n`,
    );
    this.closed = true;
    this.onDrop(this, reason);
    this.response.destroy();
  }
}

function frame({ id, event, data }: { id: string; event: string; data: string }): string {
  // JSON has no raw line breaks, so `data` is always one line.
  return `id: ${id}\nevent: ${event}\ndata: ${data}\n\n`;
}
