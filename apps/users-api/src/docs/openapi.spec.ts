import SwaggerParser from '@apidevtools/swagger-parser';
import { buildOpenApi } from './openapi';

interface Operation {
  security?: Record<string, string[]>[];
  responses: Record<string, unknown>;
}

interface Document {
  servers?: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: {
    securitySchemes: Record<string, Record<string, string>>;
    schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }>;
  };
}

const document = buildOpenApi() as unknown as Document;
const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, operation]) => ({ route: `${method} ${path}`, operation })),
);

/** Who may call what: the answers the apps give are checked against these in the e2e specs. */
const PROTECTED = [
  'delete /posts/{id}',
  'delete /sessions',
  'delete /videos/{id}',
  'get /users/me',
  'get /videos/{id}',
  'get /videos/{id}/preview',
  'get /videos/{id}/thumbnail',
  'patch /posts/{id}',
  'post /posts',
  'post /videos',
];

describe('the OpenAPI document of users-api', () => {
  it('is valid OpenAPI 3.1 and declares where it is served', async () => {
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeDefined();
    expect(document.servers).toEqual([expect.objectContaining({ url: '/' })]);
  });

  it('declares the bearer scheme and says on every operation whether it needs it', () => {
    expect(document.components.securitySchemes.bearerAuth).toMatchObject({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    });
    const needing = operations.filter(({ operation }) => operation.security?.length === 1).map((o) => o.route);
    const open = operations.filter(({ operation }) => operation.security?.length === 0).map((o) => o.route);
    expect(needing.sort()).toEqual(PROTECTED);
    expect(needing.length + open.length).toBe(operations.length);
    for (const { operation } of operations.filter((o) => PROTECTED.includes(o.route))) {
      expect(operation.security).toEqual([{ bearerAuth: [] }]);
      expect(operation.responses['401']).toBeDefined();
    }
  });

  it('documents sign-in, refresh, sign-out, the keys, the own account and video deletion', () => {
    for (const route of [
      'post /sessions',
      'post /sessions/refresh',
      'delete /sessions',
      'get /.well-known/jwks.json',
      'get /users/me',
      'delete /videos/{id}',
    ]) {
      expect(operations.map((o) => o.route)).toContain(route);
    }
    const responses = (route: string) => operations.find((o) => o.route === route)!.operation.responses;
    expect(Object.keys(responses('delete /videos/{id}'))).toEqual(expect.arrayContaining(['204', '401', '404']));
    expect(Object.keys(responses('patch /posts/{id}'))).toEqual(expect.arrayContaining(['401', '403', '412']));
    expect(Object.keys(responses('delete /posts/{id}'))).toEqual(expect.arrayContaining(['401', '403']));
    expect(JSON.stringify(responses('post /sessions')['429'])).toContain('AUTH.TOO_MANY_FAILURES');
    for (const { operation } of operations) expect(operation.responses['429']).toBeDefined();
  });

  it('keeps the email address out of the public profile and in the own account', () => {
    const { PublicUser, Account } = document.components.schemas;
    expect(Object.keys(PublicUser.properties ?? {})).not.toContain('email');
    expect(Account.required).toEqual(expect.arrayContaining(['email']));
    expect(Object.keys(Account.properties ?? {})).toContain('role');
    const ok = (route: string) =>
      JSON.stringify(Object.values(operations.find((o) => o.route === route)!.operation.responses)[0]);
    expect(ok('get /users/{id}')).toContain('#/components/schemas/PublicUser');
    expect(ok('post /users')).toContain('#/components/schemas/Account');
    expect(ok('get /users/me')).toContain('#/components/schemas/Account');
  });

  it('takes no author from the body of a new post', () => {
    const body = JSON.stringify((document.paths['/posts'].post as unknown as { requestBody: unknown }).requestBody);
    expect(body).not.toContain('authorId');
  });
});
