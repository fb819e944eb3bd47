import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { SigningKeys } from '@app/auth';
import { RunningApp } from '@app/runtime';
import { bootConsole } from './support/apps';
import { SseStream } from './support/sse';
import { waitFor } from './support/wait';

/**
 * Who may use the console's HTTP side (the console app in the test process): the system view, its stream and the
 * dead-letter tools need an access token with the admin role, verified against a JWKS served over HTTP as users-api
 * serves it. The browser suite (console.e2e-spec.ts) signs in at a real users-api.
 */
describe('web console: access', () => {
  let keys: SigningKeys;
  let jwks: Server;
  let app: RunningApp;
  let admin: string;
  let user: string;

  const token = (role: 'user' | 'admin', ttlSeconds = 300) =>
    keys.sign(
      { userId: '8d0c2a4e-4a7e-4d39-9d0e-6f1f2b1c3d4e', role, sessionId: `s-${role}` },
      'kafka-nest',
      ttlSeconds,
    );
  const request = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
    fetch(`${app.url}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      // A stream wrongly let through would never end its body: the test fails instead of hanging.
      signal: AbortSignal.timeout(10_000),
    });
  const bearer = (value: string) => ({ authorization: `Bearer ${value}` });

  beforeAll(async () => {
    keys = await SigningKeys.generate();
    jwks = createServer((_req, res) =>
      res.setHeader('content-type', 'application/json').end(JSON.stringify(keys.jwks)),
    );
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const { port } = jwks.address() as AddressInfo;
    app = await bootConsole({
      AUTH_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
      CONSOLE_APPS: 'nobody=http://127.0.0.1:9',
      CONSOLE_REFRESH_MS: '1000',
    });
    [admin, user] = await Promise.all([token('admin'), token('user')]);
  });

  afterAll(async () => {
    await app?.app.close();
    await new Promise((resolve) => jwks?.close(resolve));
  });

  it('serves the page at / under a policy that runs no script but its own, and /console moves there', async () => {
    const page = await fetch(`${app.url}/`);
    expect(page.status).toBe(200);
    const policy = page.headers.get('content-security-policy') ?? '';
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("default-src 'none'");
    // The page calls users-api and the notifier where the browser reaches them, and nothing else.
    expect(policy).toContain("connect-src 'self' http://127.0.0.1:3000 http://127.0.0.1:3004");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    for (const module of ['main.js', 'session.js', 'sign-in.js', 'system.js', 'dead-letters.js', 'console.css']) {
      expect((await fetch(`${app.url}/assets/${module}`)).status).toBe(200);
    }
    // Only the page's own files: not whatever the name of a property or a path might reach.
    for (const name of ['constructor', 'index.html', '..%2Fpackage.json', 'nothing-here.js']) {
      expect((await fetch(`${app.url}/assets/${name}`)).status).toBe(404);
    }
    const moved = await fetch(`${app.url}/console`, { redirect: 'manual' });
    expect([moved.status, moved.headers.get('location')]).toEqual([301, '/']);
    // The page and its settings are for anyone: nothing there needs a sign-in.
    expect(await (await fetch(`${app.url}/config.json`)).json()).not.toHaveProperty('adminEnabled');
  });

  it('the system data and the dead-letter tools: 401 without a token, 403 AUTH.FORBIDDEN without the admin role', async () => {
    const routes: [string, string, unknown?][] = [
      ['GET', '/system'],
      ['GET', '/system/stream'],
      ['GET', '/dead-letters?group=email-service'],
      ['POST', '/dead-letters/replay', { group: 'email-service' }],
      ['POST', '/dead-letters/purge', { group: 'email-service', through: '0/1' }],
      ['POST', '/session'],
    ];
    for (const [method, path, body] of routes) {
      const none = await request(method, path, {}, body);
      expect([path, none.status, ((await none.json()) as { code: string }).code]).toEqual([
        path,
        401,
        'AUTH.TOKEN_MISSING',
      ]);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      const refused = await request(method, path, bearer(user), body);
      expect([path, refused.status, ((await refused.json()) as { code: string }).code]).toEqual([
        path,
        403,
        'AUTH.FORBIDDEN',
      ]);
    }
    // Expired, or signed by another key: 401 too.
    const expired = await keys.sign({ userId: 'u', role: 'admin', sessionId: 's' }, 'kafka-nest', -10);
    expect((await request('GET', '/system', bearer(expired))).status).toBe(401);
    const foreign = await (
      await SigningKeys.generate()
    ).sign({ userId: 'u', role: 'admin', sessionId: 's' }, 'kafka-nest', 60);
    expect((await request('GET', '/system', bearer(foreign))).status).toBe(401);
  });

  it('an admin reads the system and the dead letters; unknown groups are still 400', async () => {
    const system = await request('GET', '/system', bearer(admin));
    expect(system.status).toBe(200);
    expect(system.headers.get('cache-control')).toBe('no-store');
    expect(await system.json()).toMatchObject({ apps: [{ name: 'nobody', status: 'unreachable' }] });
    const unknown = await request('GET', '/dead-letters?group=someone-else', bearer(admin));
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ errors: [expect.objectContaining({ field: 'group' })] });
    const purge = await request('POST', '/dead-letters/purge', bearer(admin), { group: 'nobody', through: '0/1' });
    expect(purge.status).toBe(400);
  });

  it('POST /session puts the admin token in a cookie for the stream only, lasting no longer than the token', async () => {
    const short = await token('admin', 40);
    const opened = await request('POST', '/session', bearer(short));
    expect(opened.status).toBe(200);
    expect(await opened.json()).toMatchObject({ role: 'admin', expiresAt: expect.any(String) });
    const cookie = opened.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(
      /^console_session=[\w.-]+; Path=\/system\/stream; Max-Age=(39|40); HttpOnly; SameSite=Strict$/,
    );
    const pair = cookie.split(';')[0];

    // The stream takes it; without it, or with a user's token in it, the stream refuses.
    const stream = await SseStream.open(`${app.url}/system/stream`, { cookie: pair });
    try {
      expect(stream.status).toBe(200);
      await stream.waitFor('a snapshot', (s) => s.named('system').length > 0, 15_000);
    } finally {
      stream.close();
    }
    const userCookie = `console_session=${user}`;
    expect((await request('GET', '/system/stream', { cookie: userCookie })).status).toBe(403);
    // The cookie is for the stream: the other routes want the header (a browser sends a cookie on its own).
    expect((await request('GET', '/system', { cookie: pair })).status).toBe(401);
    expect((await request('POST', '/dead-letters/replay', { cookie: pair }, { group: 'email-service' })).status).toBe(
      401,
    );

    const closed = await request('DELETE', '/session');
    expect(closed.status).toBe(204);
    expect(closed.headers.get('set-cookie')).toBe(
      'console_session=; Path=/system/stream; Max-Age=0; HttpOnly; SameSite=Strict',
    );
    // An open stream ends when the token it was opened with expires (the page reconnects with its next one).
    const brief = await SseStream.open(`${app.url}/system/stream`, {
      cookie: `console_session=${await token('admin', 2)}`,
    });
    expect(brief.status).toBe(200);
    await waitFor('the stream to end with its token', () => brief.ended, { timeoutMs: 10_000 });

    // Over https (here: as the ingress says), the cookie is Secure.
    const secure = await request('POST', '/session', { ...bearer(admin), 'x-forwarded-proto': 'https' });
    expect(secure.headers.get('set-cookie')).toMatch(/; Secure$/);
  });
});
