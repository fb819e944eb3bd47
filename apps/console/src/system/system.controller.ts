import { Controller, Get, Header, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { Authenticated, AuthenticatedByCookie, CurrentUser, VerifiedIdentity } from '@app/auth';
import { CONSOLE_COOKIE } from '../session/console-session';
import type { SystemSnapshot } from './status';
import { SystemMonitor } from './system-monitor';

/** Node timers take at most 2³¹−1 ms. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** The system view: the admin role only (it names hosts, groups and what failed). */
@Controller('system')
export class SystemController {
  constructor(private readonly monitor: SystemMonitor) {}

  /** One snapshot now, for scripts and checks (`Authorization: Bearer`). */
  @Get()
  @Header('Cache-Control', 'no-store')
  @Authenticated('admin')
  snapshot(): Promise<SystemSnapshot> {
    return this.monitor.snapshot();
  }

  /**
   * `event: system` with a SystemSnapshot every CONSOLE_REFRESH_MS while the page is open. The token comes from the
   * header or from the cookie of POST /session; the stream ends when that token expires (the page, having refreshed
   * and posted its new token, is reconnected by its EventSource).
   */
  @Get('stream')
  @AuthenticatedByCookie(CONSOLE_COOKIE, 'admin')
  stream(@CurrentUser() identity: VerifiedIdentity, @Req() request: Request, @Res() response: Response): void {
    response.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    response.setHeader('Cache-Control', 'no-cache, no-transform');
    response.setHeader('X-Accel-Buffering', 'no');
    response.flushHeaders();
    response.write('retry: 3000\n\n');
    const unsubscribe = this.monitor.subscribe({
      snapshot: (snapshot) => response.write(`event: system\ndata: ${JSON.stringify(snapshot)}\n\n`),
      end: () => response.end(),
    });
    const left = Math.min(MAX_DELAY_MS, Math.max(0, identity.expiresAt.getTime() - Date.now()));
    const expiry = setTimeout(() => response.end(), left);
    request.on('close', () => {
      clearTimeout(expiry);
      unsubscribe();
    });
  }
}
