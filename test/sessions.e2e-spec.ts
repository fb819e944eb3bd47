import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { importJWK, SignJWT } from 'jose';
import { SigningKeys } from '@app/auth';
import { RunningApp } from '@app/runtime';
import { Account, signIn, signInAnswer, signUp } from './support/accounts';
import { bootUsersApi } from './support/apps';
import { TEST_DATABASE_URL } from './support/env';

const execute = promisify(execFile);

/**
 * Sign-in against the real users-api and PostgreSQL: access tokens that other apps can verify by themselves,
 * single-use refresh tokens whose reuse ends the sign-in, throttled failures, and tokens that are refused for being
 * tampered with, expired or signed by a key that is not ours.
 */
describe('sessions: sign-in, refresh, sign-out', () => {
  let api: RunningApp;
  let keys: SigningKeys;
  let signingJwk: Awaited<ReturnType<typeof SigningKeys.newJwk>>;
  let account: Account;

  const me = (token: string) => fetch(`${api.url}/users/me`, { headers: { authorization: `Bearer ${token}` } });
  const refresh = async (refreshToken: string) => {
    const response = await fetch(`${api.url}/sessions/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    signingJwk = await SigningKeys.newJwk();
    keys = await SigningKeys.fromJwks([signingJwk]);
    api = await bootUsersApi({
      AUTH_SIGNING_KEYS: JSON.stringify({ keys: [signingJwk] }),
      AUTH_SIGN_IN_MAX_FAILURES: '3',
    });
    account = await signUp(api.url);
  });

  afterAll(async () => {
    await api?.app.close();
  });

  it('signs in with email and password; the access token opens GET /users/me', async () => {
    const session = await signIn(api.url, account.email.toUpperCase(), account.password);
    expect(session).toEqual({
      accessToken: expect.stringMatching(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/),
      refreshToken: expect.stringMatching(/^[0-9a-f-]{36}\.[\w-]{43}$/),
      tokenType: 'Bearer',
      expiresIn: 900,
    });
    const mine = await me(session.accessToken);
    expect(mine.status).toBe(200);
    expect(await mine.json()).toMatchObject({ id: account.userId, email: account.email, role: 'user' });
    const anonymous = await fetch(`${api.url}/users/me`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
    expect(await anonymous.json()).toMatchObject({ code: 'AUTH.TOKEN_MISSING' });
  });

  it('publishes only the public parts of its keys, under their kid', async () => {
    const response = await fetch(`${api.url}/.well-known/jwks.json`);
    expect(response.status).toBe(200);
    const { keys: published } = (await response.json()) as { keys: Record<string, unknown>[] };
    expect(published).toEqual([
      expect.objectContaining({ kid: signingJwk.kid, kty: 'EC', crv: 'P-256', alg: 'ES256' }),
    ]);
    expect(published[0]).not.toHaveProperty('d');
  });

  it('answers an unknown email exactly as a wrong password', async () => {
    const unknown = await signInAnswer(api.url, `nobody-${account.username}@example.com`, account.password);
    const wrong = await signInAnswer(api.url, `other-${account.username}@example.com`, 'not the password');
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
    expect(unknown.body).toEqual({
      statusCode: 401,
      code: 'AUTH.BAD_CREDENTIALS',
      message: 'The email or the password is wrong',
    });
  });

  it('a refresh token works once; used again, it ends the whole sign-in', async () => {
    const first = await signIn(api.url, account.email, account.password);
    const next = await refresh(first.refreshToken);
    expect(next.status).toBe(200);
    expect(next.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 900 });
    expect(next.body.refreshToken).not.toBe(first.refreshToken);
    expect((await me(next.body.accessToken as string)).status).toBe(200);

    // The first token again (a stolen copy): refused, and the family with it — the newer token too.
    const replayed = await refresh(first.refreshToken);
    expect(replayed).toMatchObject({ status: 401, body: { code: 'AUTH.REFRESH_REUSED' } });
    expect(await refresh(next.body.refreshToken as string)).toMatchObject({
      status: 401,
      body: { code: 'AUTH.REFRESH_REVOKED' },
    });
    // Another sign-in of the same user is not touched.
    const other = await signIn(api.url, account.email, account.password);
    expect((await refresh(other.refreshToken)).status).toBe(200);
    expect(await refresh('not-a-token')).toMatchObject({ status: 401, body: { code: 'AUTH.REFRESH_INVALID' } });
  });

  it('signing out ends the refresh token of that sign-in', async () => {
    const session = await signIn(api.url, account.email, account.password);
    const out = await fetch(`${api.url}/sessions`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${session.accessToken}` },
    });
    expect(out.status).toBe(204);
    expect(await refresh(session.refreshToken)).toMatchObject({ status: 401, body: { code: 'AUTH.REFRESH_REVOKED' } });
    expect((await fetch(`${api.url}/sessions`, { method: 'DELETE' })).status).toBe(401);
  });

  it('refuses a tampered, an expired and a foreign-key token, each with 401 saying why', async () => {
    const { accessToken } = await signIn(api.url, account.email, account.password);
    const [header, payload, signature] = accessToken.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const admin = Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url');
    const tampered = await me(`${header}.${admin}.${signature}`);
    expect(tampered.status).toBe(401);
    expect(await tampered.json()).toMatchObject({ code: 'AUTH.TOKEN_INVALID' });

    const expired = await new SignJWT({ role: 'user', sid: claims.sid as string })
      .setProtectedHeader({ alg: 'ES256', kid: signingJwk.kid })
      .setSubject(account.userId)
      .setIssuer('kafka-nest')
      .setAudience('kafka-nest')
      .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(await importJWK({ ...signingJwk, alg: 'ES256' }, 'ES256'));
    const late = await me(expired);
    expect(late.status).toBe(401);
    expect(await late.json()).toMatchObject({ code: 'AUTH.TOKEN_EXPIRED' });

    // A key of someone else's, even under our kid.
    const foreign = await SigningKeys.fromJwks([{ ...(await SigningKeys.newJwk()), kid: signingJwk.kid }]);
    const forged = await foreign.sign({ userId: account.userId, role: 'admin', sessionId: 'x' }, 'kafka-nest', 60);
    const refused = await me(forged);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ code: 'AUTH.TOKEN_INVALID' });
    // And ours signs what it should: the same claims pass.
    const genuine = await keys.sign({ userId: account.userId, role: 'user', sessionId: 'x' }, 'kafka-nest', 60);
    expect((await me(genuine)).status).toBe(200);
    expect((await fetch(`${api.url}/users/me`, { headers: { authorization: 'Basic abc' } })).status).toBe(401);
  });

  it('throttles failed sign-ins of an account with 429 and Retry-After, even for the right password', async () => {
    const target = await signUp(api.url);
    for (let i = 0; i < 3; i++) {
      expect((await signInAnswer(api.url, target.email, 'guess number ' + i)).status).toBe(401);
    }
    const blocked = await signInAnswer(api.url, target.email, target.password);
    expect(blocked.status).toBe(429);
    expect(blocked.body).toMatchObject({ code: 'AUTH.TOO_MANY_FAILURES' });
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another account from the same client is not locked out by it.
    expect((await signInAnswer(api.url, account.email, account.password)).status).toBe(201);
  });

  it('grants the admin role from the command line; the next token carries it', async () => {
    const target = await signUp(api.url);
    const { stdout } = await execute(
      process.execPath,
      ['-r', '@swc-node/register', 'apps/users-api/src/users/users.cli.ts', 'grant-admin', target.email],
      { cwd: join(__dirname, '..'), env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL } },
    );
    expect(stdout).toContain('role admin');
    const roleIn = (token: string) =>
      (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { role: string }).role;
    expect(roleIn(target.accessToken)).toBe('user');
    const next = await refresh(target.refreshToken);
    expect(roleIn(next.body.accessToken as string)).toBe('admin');
    expect(await (await me(next.body.accessToken as string)).json()).toMatchObject({ role: 'admin' });
    await expect(
      execute(
        process.execPath,
        ['-r', '@swc-node/register', 'apps/users-api/src/users/users.cli.ts', 'grant-admin', 'no@such.example'],
        {
          cwd: join(__dirname, '..'),
          env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL },
        },
      ),
    ).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('no account') });
  });
});
