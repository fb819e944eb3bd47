import { Controller, Delete, Header, HttpCode, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import {
  Authenticated,
  bearerTokenOf,
  clearedSessionCookie,
  CurrentUser,
  sessionCookie,
  VerifiedIdentity,
} from '@app/auth';
import type { ConsoleSession } from '../system/status';
import { consoleCookie } from './console-session';

/**
 * `POST /session` (an admin's `Authorization: Bearer`): the same access token in an HttpOnly, SameSite=Strict cookie
 * for /system/stream only, expiring with the token, because the page's EventSource cannot send the header. The page
 * posts again after each refresh, so the cookie always holds its current token. Nothing is stored here: any console
 * replica verifies the cookie's token as it would the header's. `DELETE /session` removes the cookie.
 */
@Controller('session')
export class SessionController {
  @Post()
  @HttpCode(200)
  @Header('Cache-Control', 'no-store')
  @Authenticated('admin')
  open(
    @CurrentUser() identity: VerifiedIdentity,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ): ConsoleSession {
    const token = bearerTokenOf(request.headers.authorization);
    response.setHeader('Set-Cookie', sessionCookie(consoleCookie(request), token, identity));
    return { userId: identity.userId, role: identity.role, expiresAt: identity.expiresAt.toISOString() };
  }

  @Delete()
  @HttpCode(204)
  close(@Req() request: Request, @Res({ passthrough: true }) response: Response): void {
    response.setHeader('Set-Cookie', clearedSessionCookie(consoleCookie(request)));
  }
}
