import { connect } from 'node:net';
import { randomUUID } from 'node:crypto';
import { openAsBlob, rmSync } from 'node:fs';
import { join } from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import { RunningApp } from '@app/runtime';
import type { Browser } from 'puppeteer-core';
import { signUp } from './support/accounts';
import { bootUsersApi } from './support/apps';
import { OpenApiConformance, OpenApiDocument } from './support/openapi';
import { makeVideo, removeTestFiles } from './support/videos';
import { launchBrowser, screenshot, watchPage } from './support/browser';
import { waitFor } from './support/wait';

interface OpenApi {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown }>>;
  components: { schemas: Record<string, unknown> };
}

/** users-api's API documents: the OpenAPI 3.1 document covers every route it serves, and /docs serves a UI for it. */
describe('users-api /docs', () => {
  let api: RunningApp;
  let browser: Browser | undefined;
  const suffix = randomUUID().slice(0, 8);
  const mediaDir = join(__dirname, '..', '.run', 'test-media', `docs-${suffix}`);

  beforeAll(async () => {
    api = await bootUsersApi({ HTTP_BODY_TIMEOUT_MS: '500', MEDIA_DIR: mediaDir, AUTH_SIGN_IN_MAX_FAILURES: '2' });
  });

  afterAll(async () => {
    await browser?.close();
    await api?.app.close();
    rmSync(mediaDir, { recursive: true, force: true });
    removeTestFiles(suffix);
  });

  it('documents every route the app serves, with the request schemas that validate it', async () => {
    const response = await fetch(`${api.url}/docs/openapi.json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as OpenApi;
    expect(document.openapi).toBe('3.1.0');

    // The routes Express really has, as OpenAPI writes them (/posts/:id → /posts/{id}).
    const router = (
      api.app.getHttpAdapter().getInstance() as {
        router: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] };
      }
    ).router;
    const served = router.stack
      .filter((layer) => layer.route)
      .flatMap((layer) =>
        Object.keys(layer.route!.methods).map(
          (method) => `${method} ${layer.route!.path.replace(/:([A-Za-z]+)/g, '{$1}')}`,
        ),
      )
      .filter((route) => !/ \/(health|metrics|docs)/.test(route))
      // The request logger is middleware mounted on every path, not a route.
      .filter((route) => !route.endsWith(' {/*splat}'));
    const documented = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method} ${path}`),
    );
    expect(served.length).toBeGreaterThan(10);
    expect([...served].sort()).toEqual([...documented].sort());

    // The request body of POST /users is the zod schema that validates it: strict, with its limits.
    const register = document.paths['/users'].post.requestBody as {
      content: { 'application/json': { schema: { required: string[]; additionalProperties: boolean } } };
    };
    const body = register.content['application/json'].schema;
    expect([...body.required].sort()).toEqual(['email', 'password', 'username']);
    expect(body.additionalProperties).toBe(false);
    // Every operation documents its error answers in the one error shape.
    for (const methods of Object.values(document.paths)) {
      for (const operation of Object.values(methods)) expect(operation.responses['400']).toBeDefined();
    }
    expect(document.components.schemas.ApiError).toBeDefined();
    // Valid against the OpenAPI 3.1 schema, every $ref resolving.
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeDefined();
  });

  it('documents on every JSON-body route the 408, 413 and 415 the HTTP boundary really answers there', async () => {
    const document = (await (await fetch(`${api.url}/docs/openapi.json`)).json()) as OpenApi;
    const port = Number(new URL(api.url).port);
    /** The status and error code of a raw request whose body may never arrive whole: read, then hung up. */
    const raw = (head: string) =>
      new Promise<{ status: number; code?: string }>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let text = '';
        const answer = () => {
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
          const code = /"code":"([A-Z._]+)"/.exec(text)?.[1];
          return { status, code };
        };
        socket.on('data', (chunk) => {
          text += chunk.toString();
          if (answer().code) {
            socket.destroy();
            resolve(answer());
          }
        });
        socket.on('error', reject);
        socket.on('close', () => resolve(answer()));
        socket.write(head);
      });
    const jsonRoutes = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods)
        .filter(([, operation]) => JSON.stringify(operation.requestBody ?? {}).includes('application/json'))
        .map(([method, operation]) => ({ method, path, operation })),
    );
    expect(jsonRoutes.map((r) => `${r.method} ${r.path}`).sort()).toEqual([
      'patch /posts/{id}',
      'post /posts',
      'post /sessions',
      'post /sessions/refresh',
      'post /users',
    ]);
    for (const { method, path, operation } of jsonRoutes) {
      const target = path.replace('{id}', randomUUID());
      const line = `${method.toUpperCase()} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
      const answers = {
        '408': await raw(`${line}Content-Type: application/json\r\nContent-Length: 10\r\n\r\n{"a`),
        '413': await raw(`${line}Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{}`),
        '415': await raw(`${line}Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi`),
      };
      for (const [status, answer] of Object.entries(answers)) {
        const documented = operation.responses[status] as { description?: string; content?: unknown } | undefined;
        expect({ route: `${method} ${path}`, status: answer.status, documented: documented?.description }).toEqual({
          route: `${method} ${path}`,
          status: Number(status),
          documented: expect.stringContaining(answer.code!),
        });
        expect(documented?.content).toEqual({
          'application/json': { schema: { $ref: '#/components/schemas/ApiError' } },
        });
      }
    }
    // The upload streams its own body: its own 413 and 415, and Node's bare 408 past HTTP_REQUEST_TIMEOUT_MS.
    const upload = document.paths['/videos'].post.responses as Record<
      string,
      { description: string; content?: unknown }
    >;
    expect(upload['413'].description).toContain('VIDEO.TOO_LARGE');
    expect(upload['415'].description).toMatch(/VIDEO\.NOT_MULTIPART.*VIDEO\.UNSUPPORTED_TYPE/);
    expect(upload['408']).toMatchObject({ description: expect.stringContaining('HTTP_REQUEST_TIMEOUT_MS') });
    expect(upload['408'].content).toBeUndefined();
  });

  it('every answer of a walk through the API, refusals included, is documented and matches its schema', async () => {
    const document = (await (await fetch(`${api.url}/docs/openapi.json`)).json()) as OpenApiDocument;
    const conformance = new OpenApiConformance(document);
    const check = (route: string, response: Response) => conformance.check(route, response);
    const json = (method: string, body: unknown, headers: Record<string, string> = {}) => ({
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    const name = `doc${suffix}`;
    const password = `correct horse battery ${suffix} staple`;
    const registered = await fetch(
      `${api.url}/users`,
      json('POST', { email: `${name}@example.com`, username: name, password }),
    );
    const account = (await check('post /users', registered)) as { id: string; email: string };
    expect(account.email).toBe(`${name}@example.com`);
    const session = (await check(
      'post /sessions',
      await fetch(`${api.url}/sessions`, json('POST', { email: `${name}@example.com`, password })),
    )) as { accessToken: string; refreshToken: string };
    const auth = { authorization: `Bearer ${session.accessToken}` };
    const me = (await check('get /users/me', await fetch(`${api.url}/users/me`, { headers: auth }))) as {
      role: string;
    };
    expect(me.role).toBe('user');
    const profile = (await check('get /users/{id}', await fetch(`${api.url}/users/${account.id}`))) as object;
    expect(profile).not.toHaveProperty('email');
    await check('get /users/me', await fetch(`${api.url}/users/me`));
    await check('get /users/{id}', await fetch(`${api.url}/users/${randomUUID()}`));
    await check('get /.well-known/jwks.json', await fetch(`${api.url}/.well-known/jwks.json`));
    await check(
      'post /sessions',
      await fetch(`${api.url}/sessions`, json('POST', { email: `${name}@example.com`, password: 'wrong' })),
    );
    await check(
      'post /sessions',
      await fetch(`${api.url}/sessions`, json('POST', { email: `${name}@example.com`, password: 'wrong' })),
    );
    // The third failure within the window (AUTH_SIGN_IN_MAX_FAILURES is 2 here): 429.
    await check(
      'post /sessions',
      await fetch(`${api.url}/sessions`, json('POST', { email: `${name}@example.com`, password: 'wrong' })),
    );
    await check(
      'post /sessions/refresh',
      await fetch(`${api.url}/sessions/refresh`, json('POST', { refreshToken: 'x' })),
    );

    // Posts: the author writes, someone else is refused, anyone reads.
    const post = (await check(
      'post /posts',
      await fetch(`${api.url}/posts`, json('POST', { title: 'documented', body: 'text' }, auth)),
    )) as { id: string };
    await check('post /posts', await fetch(`${api.url}/posts`, json('POST', { title: 't', body: 'b' })));
    await check(
      'post /posts',
      await fetch(`${api.url}/posts`, json('POST', { title: 't', body: 'b', authorId: account.id }, auth)),
    );
    await check('get /posts', await fetch(`${api.url}/posts?authorId=${account.id}`));
    await check('get /posts/{id}', await fetch(`${api.url}/posts/${post.id}`));
    await check('get /posts/{id}', await fetch(`${api.url}/posts/${randomUUID()}`));
    const stranger = await signUp(api.url);
    await check(
      'patch /posts/{id}',
      await fetch(
        `${api.url}/posts/${post.id}`,
        json('PATCH', { title: 'x' }, { ...stranger.auth, 'if-match': '"1"' }),
      ),
    );
    await check(
      'delete /posts/{id}',
      await fetch(`${api.url}/posts/${post.id}`, { method: 'DELETE', headers: stranger.auth }),
    );
    await check(
      'patch /posts/{id}',
      await fetch(`${api.url}/posts/${post.id}`, json('PATCH', { title: 'x' }, { ...auth, 'if-match': '"1"' })),
    );
    await check(
      'patch /posts/{id}',
      await fetch(`${api.url}/posts/${post.id}`, json('PATCH', { title: 'y' }, { ...auth, 'if-match': '"1"' })),
    );
    await check('delete /posts/{id}', await fetch(`${api.url}/posts/${post.id}`, { method: 'DELETE', headers: auth }));

    // Videos: the uploader's only.
    const clip = await makeVideo(`docs-${suffix}`, { seconds: 1 });
    const form = new FormData();
    form.append('file', await openAsBlob(clip.path), clip.name);
    const video = (await check(
      'post /videos',
      await fetch(`${api.url}/videos`, { method: 'POST', body: form, headers: auth }),
    )) as { id: string };
    await check('post /videos', await fetch(`${api.url}/videos`, { method: 'POST', body: new FormData() }));
    await check('get /videos/{id}', await fetch(`${api.url}/videos/${video.id}`, { headers: auth }));
    await check('get /videos/{id}', await fetch(`${api.url}/videos/${video.id}`, { headers: stranger.auth }));
    await check(
      'get /videos/{id}/thumbnail',
      await fetch(`${api.url}/videos/${video.id}/thumbnail`, { headers: auth }),
    );
    await check('get /videos/{id}/preview', await fetch(`${api.url}/videos/${video.id}/preview`));
    await check(
      'delete /videos/{id}',
      await fetch(`${api.url}/videos/${video.id}`, { method: 'DELETE', headers: stranger.auth }),
    );
    await check('delete /videos/{id}', await fetch(`${api.url}/videos/${video.id}`, { method: 'DELETE' }));
    await check(
      'delete /videos/{id}',
      await fetch(`${api.url}/videos/${video.id}`, { method: 'DELETE', headers: auth }),
    );
    await check('get /videos/{id}', await fetch(`${api.url}/videos/${video.id}`, { headers: auth }));

    // Signing out, then the refresh token of that sign-in is refused.
    await check('delete /sessions', await fetch(`${api.url}/sessions`, { method: 'DELETE', headers: auth }));
    await check('delete /sessions', await fetch(`${api.url}/sessions`, { method: 'DELETE' }));
    await check(
      'post /sessions/refresh',
      await fetch(`${api.url}/sessions/refresh`, json('POST', { refreshToken: session.refreshToken })),
    );

    expect(conformance.mismatches).toEqual([]);
    expect([...conformance.seen].sort()).toEqual(
      expect.arrayContaining([
        'post /users 201',
        'post /sessions 201',
        'post /sessions 401',
        'post /sessions 429',
        'get /users/me 200',
        'get /users/me 401',
        'post /posts 201',
        'post /posts 400',
        'post /posts 401',
        'patch /posts/{id} 403',
        'patch /posts/{id} 412',
        'delete /posts/{id} 403',
        'delete /posts/{id} 204',
        'post /videos 202',
        'post /videos 401',
        'get /videos/{id} 200',
        'get /videos/{id} 404',
        'delete /videos/{id} 204',
        'delete /videos/{id} 401',
        'delete /videos/{id} 404',
        'delete /sessions 204',
      ]),
    );
  });

  it('serves the UI page and its files from the package, and nothing else from that folder', async () => {
    const page = await fetch(`${api.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('/docs/openapi.json');
    const bundle = await fetch(`${api.url}/docs/assets/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
    expect((await fetch(`${api.url}/docs/assets/package.json`)).status).toBe(404);
    expect((await fetch(`${api.url}/docs/assets/..%2Fpackage.json`)).status).toBe(404);
  });

  it('renders in a real browser: every operation listed, one expands to its schema, no error and no outside request', async () => {
    const spec = (await (await fetch(`${api.url}/docs/openapi.json`)).json()) as OpenApi;
    const operations = Object.values(spec.paths).reduce((sum, methods) => sum + Object.keys(methods).length, 0);
    browser = await launchBrowser();
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const watch = watchPage(page, api.url);
    const response = await page.goto(`${api.url}/docs`, { waitUntil: 'networkidle0' });
    expect(response?.status()).toBe(200);

    await waitFor(`${operations} operations listed`, async () => (await page.$$('.opblock')).length === operations);
    // Open POST /users: Swagger UI shows its request body schema, taken from the document.
    await page.click('#operations-users-registerUser .opblock-summary');
    await page.waitForSelector('#operations-users-registerUser .opblock-body .responses-table');
    const text = await page.$eval(
      '#operations-users-registerUser',
      (element) => (element as unknown as { innerText: string }).innerText,
    );
    expect(text).toContain('201');
    expect(text).toContain('409');
    // The example body Swagger UI builds from the zod schema, and the header parameter.
    expect(text).toContain('username');
    expect(text).toContain('X-Correlation-Id');
    await screenshot(page, 'docs');

    expect(watch.errors).toEqual([]);
    expect(watch.foreignRequests).toEqual([]);
  });
});
