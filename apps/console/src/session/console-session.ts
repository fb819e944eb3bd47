import type { Request } from 'express';
import type { SessionCookieOptions } from '@app/auth';

/** The cookie the console's own stream (/system/stream) takes the access token from; sent nowhere else. */
export const CONSOLE_COOKIE = 'console_session';

/** Secure over https: the request's own scheme, or the ingress's `X-Forwarded-Proto`. */
export function consoleCookie(request: Request): SessionCookieOptions {
  const forwarded = String(request.headers['x-forwarded-proto'] ?? '')
    .split(',')[0]
    .trim();
  return {
    name: CONSOLE_COOKIE,
    path: '/system/stream',
    secure: request.protocol === 'https' || forwarded === 'https',
  };
}
