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
import type { Identity, Role } from './identity';
import { TokenVerifier } from './token-verifier';

/** The provider that verifies access tokens in an app (AuthModule provides it). */
export const TOKEN_VERIFIER = Symbol('TOKEN_VERIFIER');

const REQUIRED_ROLE = 'auth:role';
const OPTIONAL = 'auth:optional';

type AuthenticatedRequest = Request & { identity?: Identity };

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
    const optional = this.reflector.getAllAndOverride<boolean | undefined>(OPTIONAL, [
      context.getHandler(),
      context.getClass(),
    ]);
    const header = request.headers.authorization;
    // No credentials at all on an optional route: anonymous. Credentials that are sent are checked all the same.
    if (optional && (header === undefined || header.trim() === '')) return true;
    const identity = await this.verifier.verify(bearerTokenOf(request.headers.authorization));
    const role = this.reflector.getAllAndOverride<Role | undefined>(REQUIRED_ROLE, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (role === 'admin' && identity.role !== 'admin') throw AuthError.forbidden('admin');
    request.identity = identity;
    return true;
  }
}

/** The route needs a signed-in user (`Authorization: Bearer <accessToken>`), or one with the given role. */
export const Authenticated = (role: Role = 'user') =>
  applyDecorators(SetMetadata(REQUIRED_ROLE, role), UseGuards(BearerAuthGuard));

/**
 * The route serves anonymous callers too (`OptionalUser()` is then undefined), and knows the user when a Bearer token
 * is sent; a token that is sent but does not hold is refused (401) as on `@Authenticated()` routes. For answers that
 * must not tell "not yours" from "not there" (404 to everyone but the owner).
 */
export const OptionallyAuthenticated = () =>
  applyDecorators(SetMetadata(REQUIRED_ROLE, 'user'), SetMetadata(OPTIONAL, true), UseGuards(BearerAuthGuard));

/** The signed-in user of an `@Authenticated()` route. */
export const CurrentUser = createParamDecorator((_data: unknown, context: ExecutionContext): Identity => {
  const identity = context.switchToHttp().getRequest<AuthenticatedRequest>().identity;
  if (!identity) throw AuthError.missing();
  return identity;
});

/** The signed-in user of an `@OptionallyAuthenticated()` route, or undefined for an anonymous caller. */
export const OptionalUser = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Identity | undefined =>
    context.switchToHttp().getRequest<AuthenticatedRequest>().identity,
);
