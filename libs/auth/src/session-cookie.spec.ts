import 'reflect-metadata';
import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthError } from './auth-errors';
import { AuthenticatedByCookie, BearerAuthGuard } from './bearer-auth.guard';
import { clearedSessionCookie, cookieTokenOf, sessionCookie } from './session-cookie';
import { SigningKeys } from './signing-keys';
import { TokenVerifier } from './token-verifier';

const options = { name: 'app_session', path: '/stream', secure: false };

describe('session cookie', () => {
  it('carries the token HttpOnly, SameSite=Strict, on its path only, and never outlives the token', () => {
    const expiresAt = new Date(Date.now() + 90_500);
    const cookie = sessionCookie(options, 'a.b.c', { userId: 'u', role: 'admin', sessionId: 's', expiresAt });
    expect(cookie).toBe('app_session=a.b.c; Path=/stream; Max-Age=90; HttpOnly; SameSite=Strict');
    expect(
      sessionCookie({ ...options, secure: true }, 't', { userId: 'u', role: 'user', sessionId: 's', expiresAt }),
    ).toMatch(/; Secure$/);
    // An expired token: a cookie that is gone at once.
    const past = { userId: 'u', role: 'user' as const, sessionId: 's', expiresAt: new Date(Date.now() - 1000) };
    expect(sessionCookie(options, 't', past)).toContain('Max-Age=0;');
    expect(clearedSessionCookie(options)).toBe('app_session=; Path=/stream; Max-Age=0; HttpOnly; SameSite=Strict');
  });

  it('reads its own cookie among others, and is a 401 without it', () => {
    expect(cookieTokenOf('other=1; app_session=x.y.z; app_session2=no', 'app_session')).toBe('x.y.z');
    for (const header of [undefined, '', 'other=1', 'app_session=', 'xapp_session=1']) {
      expect(() => cookieTokenOf(header, 'app_session')).toThrow(AuthError);
    }
  });
});

describe('AuthenticatedByCookie', () => {
  class Routes {
    @AuthenticatedByCookie('app_session', 'admin')
    stream(): void {}
  }

  async function guardWith(headers: Record<string, string>) {
    const keys = await SigningKeys.generate();
    const guard = new BearerAuthGuard(TokenVerifier.local(keys.jwks, 'test'), new Reflector());
    const request: { headers: Record<string, string>; identity?: unknown } = { headers };
    const context = {
      switchToHttp: () => ({ getRequest: () => request }),
      getHandler: () => Routes.prototype.stream,
      getClass: () => Routes,
    } as unknown as ExecutionContext;
    const sign = (role: 'user' | 'admin') => keys.sign({ userId: 'u1', role, sessionId: 's1' }, 'test', 60);
    return { guard, request, context, sign };
  }

  it('takes the token from the cookie when there is no Authorization header, and still wants the role', async () => {
    const { request, context, guard, sign } = await guardWith({});
    request.headers.cookie = `app_session=${await sign('admin')}`;
    await expect(guard.canActivate(context)).resolves.toBe(true);
    expect(request.identity).toMatchObject({ userId: 'u1', role: 'admin', expiresAt: expect.any(Date) });

    request.headers.cookie = `app_session=${await sign('user')}`;
    await expect(guard.canActivate(context)).rejects.toMatchObject({ status: 403, code: 'AUTH.FORBIDDEN' });

    request.headers.cookie = 'app_session=not-a-token';
    await expect(guard.canActivate(context)).rejects.toMatchObject({ status: 401, code: 'AUTH.TOKEN_INVALID' });

    delete request.headers.cookie;
    await expect(guard.canActivate(context)).rejects.toMatchObject({ status: 401, code: 'AUTH.TOKEN_MISSING' });
  });

  it('prefers the Authorization header when one is sent', async () => {
    const { request, context, guard, sign } = await guardWith({});
    request.headers.cookie = `app_session=${await sign('admin')}`;
    request.headers.authorization = `Bearer ${await sign('user')}`;
    await expect(guard.canActivate(context)).rejects.toMatchObject({ status: 403 });
  });
});
