import { AuthError } from './auth-errors';
import type { VerifiedIdentity } from './identity';

/**
 * An access token in a cookie, for the one thing a browser cannot send a header with: an EventSource. The cookie is
 * set by a route that took the token as `Authorization: Bearer` (so no other site can have it set), is HttpOnly (no
 * script reads it back), SameSite=Strict (no other site's page makes the browser send it), limited to a path, and
 * expires with the token it carries; the token in it is verified on every request like the header's.
 */
export interface SessionCookieOptions {
  name: string;
  /** The routes that read it (e.g. `/system/stream`); the browser sends it nowhere else. */
  path: string;
  /** Over https (the request's own scheme or `X-Forwarded-Proto` from the ingress). */
  secure: boolean;
}

const NAME = /^[A-Za-z0-9_-]+$/;

function attributes(options: SessionCookieOptions, maxAge: number): string {
  if (!NAME.test(options.name)) throw new Error(`a cookie name of letters, digits, _ and -: ${options.name}`);
  return [`Path=${options.path}`, `Max-Age=${maxAge}`, 'HttpOnly', 'SameSite=Strict', options.secure ? 'Secure' : null]
    .filter((part) => part !== null)
    .join('; ');
}

/** The Set-Cookie value carrying `token` until `identity.expiresAt` (rounded down: never a second longer). */
export function sessionCookie(options: SessionCookieOptions, token: string, identity: VerifiedIdentity): string {
  const seconds = Math.max(0, Math.floor((identity.expiresAt.getTime() - Date.now()) / 1000));
  return `${options.name}=${token}; ${attributes(options, seconds)}`;
}

/** The Set-Cookie value that removes it. */
export function clearedSessionCookie(options: SessionCookieOptions): string {
  return `${options.name}=; ${attributes(options, 0)}`;
}

/** One cookie's value from a Cookie header (URL-decoded, as Express sets it), or undefined. */
export function cookieValueOf(header: string | undefined, name: string): string | undefined {
  for (const pair of (header ?? '').split(';')) {
    const at = pair.indexOf('=');
    if (at > 0 && pair.slice(0, at).trim() === name) {
      const raw = pair.slice(at + 1).trim();
      try {
        return decodeURIComponent(raw);
      } catch {
        return raw;
      }
    }
  }
  return undefined;
}

/** The access token of the cookie `name` in a Cookie header; 401 AUTH.TOKEN_MISSING without one. */
export function cookieTokenOf(header: string | undefined, name: string): string {
  const value = cookieValueOf(header, name);
  if (value === undefined || value === '') throw AuthError.missing();
  return value;
}
