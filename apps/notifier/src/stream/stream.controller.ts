import { Controller, Get, Headers, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { errorMessageOf } from '@app/messaging';
import { ValidationFailedError } from '@app/runtime';
import { NotificationHub, StreamRefusedError } from './notification-hub';
import { nameOf, STREAM_EVENT_NAMES } from './stream-events';

@Controller('notifications')
export class StreamController {
  constructor(private readonly hub: NotificationHub) {}

  /**
   * `GET /notifications/stream[?types=post.created,video.processed][&lastEventId=…]`: Server-Sent Events. Each event
   * has an `id` (where the client stands in the broker's partitions), an `event` name and the event as JSON `data`.
   * Reconnecting with `Last-Event-ID` (EventSource does it by itself; `lastEventId=` for curl) replays what was
   * missed, once, on any replica. `recent=N` (1–100) starts a new stream with the last N events of each partition
   * (a page that shows what happened before it loaded).
   */
  @Get('stream')
  async stream(
    @Query('types') types: string | string[] | undefined,
    @Query('lastEventId') lastEventIdQuery: string | undefined,
    @Query('recent') recentQuery: string | string[] | undefined,
    @Headers('last-event-id') lastEventIdHeader: string | undefined,
    @Req() request: Request,
    @Res() response: Response,
  ): Promise<void> {
    const only = parseTypes(types);
    const recent = parseRecent(recentQuery);
    try {
      await this.hub.open(request, response, {
        types: only,
        lastEventId: (lastEventIdHeader ?? lastEventIdQuery)?.trim() || undefined,
        recent,
      });
    } catch (error) {
      if (response.headersSent) {
        response.end();
        return;
      }
      throw error instanceof StreamRefusedError
        ? error
        : new StreamRefusedError(503, 'NOTIFIER.UNAVAILABLE', `the stream cannot start: ${errorMessageOf(error)}`);
    }
  }
}

/** The largest `recent`: a first paint, not a history (a resume is bounded by NOTIFIER_RESUME_MAX_EVENTS). */
export const MAX_RECENT = 100;

function parseRecent(raw: string | string[] | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Array.isArray(raw) ? raw.join(',') : raw;
  if (!/^\d{1,3}$/.test(value) || Number(value) < 1 || Number(value) > MAX_RECENT) {
    throw new ValidationFailedError([
      { field: 'recent', message: `must be a whole number of events from 1 to ${MAX_RECENT}` },
    ]);
  }
  return Number(value);
}

function parseTypes(raw: string | string[] | undefined): ReadonlySet<string> | undefined {
  if (raw === undefined) return undefined;
  const names = (Array.isArray(raw) ? raw.join(',') : raw)
    .split(',')
    .map((name) => nameOf(name.trim()))
    .filter((name) => name.length > 0);
  const unknown = names.filter((name) => !STREAM_EVENT_NAMES.includes(name));
  if (names.length === 0 || unknown.length > 0) {
    throw new ValidationFailedError([
      {
        field: 'types',
        message: `${unknown.length > 0 ? `unknown ${unknown.map((n) => `'${n.slice(0, 40)}'`).join(', ')}; ` : ''}must be a comma-separated list of ${STREAM_EVENT_NAMES.join(', ')}`,
      },
    ]);
  }
  return new Set(names);
}
