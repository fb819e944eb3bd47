import {
  applyDecorators,
  CanActivate,
  createParamDecorator,
  ExecutionContext,
  Inject,
  Injectable,
  SetMetadata,
  UseGuards,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { AuthError } from './auth-errors';
import type { Identity, Role, VerifiedIdentity } from './identity';
import { cookieTokenOf } from './session-cookie';
import { TokenVerifier } from './token-verifier';

/** The provider that verifies access tokens in an app (AuthModule provides it). */
export const TOKEN_VERIFIER = Symbol('TOKEN_VERIFIER');

const REQUIRED_ROLE = 'auth:role';
const TOKEN_COOKIE = 'auth:cookie';
const OPTIONAL = 'auth:optional';

type AuthenticatedRequest = Request & { identity?: VerifiedIdentity };

/** The bearer token of a request: from the Authorization header only, never from a cookie or the URL. */
export function bearerTokenOf(header: string | undefined): string {
  if (header === undefined || header.trim() === '') throw AuthError.missing();
  const match = /^Bearer\s+([A-Za-z0-9._~+/-]+=*)\s*$/i.exec(header);
  if (!match) throw AuthError.invalid('the Authorization header must be "Bearer <accessToken>"');
  return match[1];
}

@Injectable()
export class BearerAuthGuard implements CanActivate {
  constructor(
    @Inject(TOKEN_VERIFIER) private readonly verifier: TokenVerifier,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const targets = [context.getHandler(), context.getClass()];
    const optional = this.reflector.getAllAndOverride<boolean | undefined>(OPTIONAL, targets);
    const cookie = this.reflector.getAllAndOverride<string | undefined>(TOKEN_COOKIE, targets);
    const { authorization } = request.headers;
    // No credentials at all on an optional route: anonymous. Credentials that are sent are checked all the same.
    if (optional && (authorization === undefined || authorization.trim() === '')) return true;
    const token =
      cookie !== undefined && authorization === undefined
        ? cookieTokenOf(request.headers.cookie, cookie)
        : bearerTokenOf(authorization);
    const identity = await this.verifier.verify(token);
    const role = this.reflector.getAllAndOverride<Role | undefined>(REQUIRED_ROLE, targets);
    if (role === 'admin' && identity.role !== 'admin') throw AuthError.forbidden('admin');
    request.identity = identity;
    return true;
  }
}

/** The route needs a signed-in user (`Authorization: Bearer <accessToken>`), or one with the given role. */
export const Authenticated = (role: Role = 'user') =>
  applyDecorators(SetMetadata(REQUIRED_ROLE, role), UseGuards(BearerAuthGuard));

/**
 * As `Authenticated`, for a route a browser's EventSource opens (it cannot send headers): the access token from the
 * Authorization header, or without one from the cookie `cookie`, which a Bearer route of the same app set
 * (sessionCookie). Only for routes that change nothing: a cookie is sent by the browser on its own.
 */
export const AuthenticatedByCookie = (cookie: string, role: Role = 'user') =>
  applyDecorators(SetMetadata(REQUIRED_ROLE, role), SetMetadata(TOKEN_COOKIE, cookie), UseGuards(BearerAuthGuard));

/**
 * The route serves anonymous callers too (`OptionalUser()` is then undefined), and knows the user when a Bearer token
 * is sent; a token that is sent but does not hold is refused (401) as on `@Authenticated()` routes. For answers that
 * must not tell "not yours" from "not there" (404 to everyone but the owner).
 */
export const OptionallyAuthenticated = () =>
  applyDecorators(SetMetadata(REQUIRED_ROLE, 'user'), SetMetadata(OPTIONAL, true), UseGuards(BearerAuthGuard));

/** The signed-in user of an `@Authenticated()` route. */
export const CurrentUser = createParamDecorator((_data: unknown, context: ExecutionContext): VerifiedIdentity => {
  const identity = context.switchToHttp().getRequest<AuthenticatedRequest>().identity;
  if (!identity) throw AuthError.missing();
  return identity;
});

/** The signed-in user of an `@OptionallyAuthenticated()` route, or undefined for an anonymous caller. */
export const OptionalUser = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Identity | undefined =>
    context.switchToHttp().getRequest<AuthenticatedRequest>().identity,
);
