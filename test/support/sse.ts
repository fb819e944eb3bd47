import { ClientRequest, IncomingMessage, request } from 'node:http';
import { waitFor } from './wait';

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/**
 * A Server-Sent Events client as a browser's EventSource reads a stream: events with their id, name and data, and
 * the last id seen. It does not reconnect by itself: a test reconnects it where it wants, with `lastEventId`.
 */
export class SseStream {
  readonly events: SseEvent[] = [];
  comments = 0;
  lastEventId?: string;
  ended = false;
  private buffer = '';
  private req?: ClientRequest;

  private constructor(
    readonly status: number,
    readonly body: string,
  ) {}

  static open(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
    return new Promise((resolve, reject) => {
      const req = request(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res: IncomingMessage) => {
        if (res.statusCode !== 200) {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve(new SseStream(res.statusCode ?? 0, body)));
          return;
        }
        const stream = new SseStream(200, '');
        stream.req = req;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => stream.feed(chunk));
        res.on('end', () => (stream.ended = true));
        res.on('error', () => (stream.ended = true));
        resolve(stream);
      });
      req.on('error', (error) => reject(error));
      req.end();
    });
  }

  /** Events by name, their data parsed. */
  named<T = { type: string; data: Record<string, unknown> }>(name: string): T[] {
    return this.events.filter((e) => e.event === name).map((e) => JSON.parse(e.data) as T);
  }

  waitFor(what: string, predicate: (stream: SseStream) => boolean, timeoutMs = 30_000): Promise<true> {
    return waitFor(
      what,
      () => predicate(this) || (this.ended ? Promise.reject(new Error(`stream ended waiting for ${what}`)) : false),
      {
        timeoutMs,
        intervalMs: 50,
      },
    );
  }

  close(): void {
    this.req?.destroy();
    this.ended = true;
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const event: SseEvent = { event: 'message', data: '' };
      let hasData = false;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          this.comments += 1;
          continue;
        }
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') event.id = value;
        else if (field === 'event') event.event = value;
        else if (field === 'data') {
          event.data = hasData ? `${event.data}\n${value}` : value;
          hasData = true;
        }
      }
      if (event.id !== undefined) this.lastEventId = event.id;
      if (hasData) this.events.push(event);
    }
  }
}
