import { Controller, Delete, Get, Headers, HttpCode, Inject, Post, Query, Req, Res } from '@nestjs/common';
import type { CookieOptions, Request, Response } from 'express';
import { AuthError, bearerTokenOf, cookieValueOf, TOKEN_VERIFIER, TokenVerifier } from '@app/auth';
import { errorMessageOf } from '@app/messaging';
import { ValidationFailedError } from '@app/runtime';
import { NotificationHub, StreamRefusedError } from './notification-hub';
import { PUBLIC_STREAM, StreamScope, userStream } from './positions';
import { StreamKeys, StreamSession } from './stream-keys';
import { nameOf, PUBLIC_EVENT_NAMES, USER_EVENT_NAMES } from './stream-events';

/** The per-user stream's cookie: HttpOnly, SameSite=Strict, only sent to /notifications. */
export const SESSION_COOKIE = 'notifier_session';

interface StreamQuery {
  types: string | string[] | undefined;
  lastEventId: string | undefined;
  recent: string | string[] | undefined;
  lastEventIdHeader: string | undefined;
}

@Controller('notifications')
export class StreamController {
  constructor(
    private readonly hub: NotificationHub,
    private readonly keys: StreamKeys,
    @Inject(TOKEN_VERIFIER) private readonly verifier: TokenVerifier,
  ) {}

  /**
   * `GET /notifications/stream[?types=post.created,post.deleted][&lastEventId=…]`: the public stream, Server-Sent
   * Events of posts. Each event has an `id` (where the client stands in the broker's partitions, signed for this
   * stream), an `event` name and the event as JSON `data`. Reconnecting with `Last-Event-ID` (EventSource does it by
   * itself; `lastEventId=` for curl) replays what was missed, once, on any replica. `recent=N` (1–100) starts a new
   * stream with the last N events of each partition (a page that shows what happened before it loaded).
   */
  @Get('stream')
  async stream(
    @Query('types') types: string | string[] | undefined,
    @Query('lastEventId') lastEventId: string | undefined,
    @Query('recent') recent: string | string[] | undefined,
    @Headers('last-event-id') lastEventIdHeader: string | undefined,
    @Req() request: Request,
    @Res() response: Response,
  ): Promise<void> {
    await this.serve(
      PUBLIC_STREAM,
      PUBLIC_EVENT_NAMES,
      { types, lastEventId, recent, lastEventIdHeader },
      request,
      response,
    );
  }

  /**
   * `GET /notifications/me/stream`: the signed-in user's own events — their videos' progress, results and failures
   * (`ownerId`) and the emails sent to them (`userId`) — as the public stream serves posts, resumable the same way.
   * Signed in by the session cookie (`POST /notifications/session`: a browser's EventSource sends no headers) or
   * `Authorization: Bearer <accessToken>`. The stream ends when the sign-in does; the client reconnects once renewed.
   */
  @Get('me/stream')
  async myStream(
    @Query('types') types: string | string[] | undefined,
    @Query('lastEventId') lastEventId: string | undefined,
    @Query('recent') recent: string | string[] | undefined,
    @Headers('last-event-id') lastEventIdHeader: string | undefined,
    @Req() request: Request,
    @Res() response: Response,
  ): Promise<void> {
    const session = await this.viewer(request);
    await this.serve(
      userStream(session.userId),
      USER_EVENT_NAMES,
      { types, lastEventId, recent, lastEventIdHeader },
      request,
      response,
      session.expiresAt,
    );
  }

  /**
   * `POST /notifications/session` with `Authorization: Bearer <accessToken>`: 204 and the cookie the per-user stream
   * accepts, HttpOnly, SameSite=Strict (Secure over https), for /notifications only, ending when the token does.
   * Call it again with a refreshed token before then.
   */
  @Post('session')
  @HttpCode(204)
  async signIn(@Req() request: Request, @Res({ passthrough: true }) response: Response): Promise<void> {
    const identity = await this.verifier.verify(bearerTokenOf(request.headers.authorization));
    const maxAge = identity.expiresAt.getTime() - Date.now();
    if (maxAge < 1000) throw AuthError.expired();
    response.cookie(SESSION_COOKIE, this.keys.sealSession({ userId: identity.userId, expiresAt: identity.expiresAt }), {
      ...cookieOptions(request),
      maxAge: Math.floor(maxAge / 1000) * 1000,
    });
  }

  /** `DELETE /notifications/session`: 204, the cookie cleared (a stream already open ends with its sign-in). */
  @Delete('session')
  @HttpCode(204)
  signOut(@Req() request: Request, @Res({ passthrough: true }) response: Response): void {
    response.clearCookie(SESSION_COOKIE, cookieOptions(request));
  }

  /** The user of a per-user stream request: a Bearer header wins (curl), else the session cookie. */
  private async viewer(request: Request): Promise<StreamSession> {
    const header = request.headers.authorization;
    if (header !== undefined && header.trim() !== '') {
      const identity = await this.verifier.verify(bearerTokenOf(header));
      return { userId: identity.userId, expiresAt: identity.expiresAt };
    }
    const cookie = cookieValueOf(request.headers.cookie, SESSION_COOKIE);
    if (cookie === undefined) {
      throw new AuthError(
        401,
        'AUTH.TOKEN_MISSING',
        'Sign in first: POST /notifications/session with Authorization: Bearer <accessToken>, or send that header',
      );
    }
    const session = this.keys.openSession(cookie);
    if (!session) {
      throw AuthError.invalid('the session cookie is not valid or has ended: POST /notifications/session again');
    }
    return session;
  }

  private async serve(
    stream: StreamScope,
    names: readonly string[],
    query: StreamQuery,
    request: Request,
    response: Response,
    until?: Date,
  ): Promise<void> {
    const only = parseTypes(query.types, names);
    const recent = parseRecent(query.recent);
    try {
      await this.hub.open(request, response, {
        stream,
        types: only,
        lastEventId: (query.lastEventIdHeader ?? query.lastEventId)?.trim() || undefined,
        recent,
        until,
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

function cookieOptions(request: Request): CookieOptions {
  return {
    httpOnly: true,
    sameSite: 'strict',
    // Behind a TLS-terminating proxy the request arrives over http: its X-Forwarded-Proto can only make this stricter.
    secure: request.secure || request.headers['x-forwarded-proto'] === 'https',
    path: '/notifications',
  };
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

function parseTypes(raw: string | string[] | undefined, allowed: readonly string[]): ReadonlySet<string> | undefined {
  if (raw === undefined) return undefined;
  const names = (Array.isArray(raw) ? raw.join(',') : raw)
    .split(',')
    .map((name) => nameOf(name.trim()))
    .filter((name) => name.length > 0);
  const unknown = names.filter((name) => !allowed.includes(name));
  if (names.length === 0 || unknown.length > 0) {
    const elsewhere = unknown.filter((name) => [...PUBLIC_EVENT_NAMES, ...USER_EVENT_NAMES].includes(name));
    const where =
      elsewhere.length === 0
        ? ''
        : allowed === PUBLIC_EVENT_NAMES
          ? " (a user's own events are on GET /notifications/me/stream)"
          : ' (post events are on GET /notifications/stream)';
    throw new ValidationFailedError([
      {
        field: 'types',
        message: `${unknown.length > 0 ? `not on this stream: ${unknown.map((n) => `'${n.slice(0, 40)}'`).join(', ')}${where}; ` : ''}must be a comma-separated list of ${allowed.join(', ')}`,
      },
    ]);
  }
  return new Set(names);
}
