import { z } from 'zod';
import { VideoMetadata } from '@app/contracts';
import { CreatePostBody, ListPostsQuery, PostIdParam, UpdatePostBody } from '../posts/posts.schemas';
import { RefreshBody, SignInBody } from '../sessions/sessions.schemas';
import { RegisterUserBody, UserIdParam } from '../users/users.schemas';
import { VideoIdParam } from '../videos/videos.controller';

/**
 * The OpenAPI 3.1 document of users-api. Request bodies, parameters and queries come from the very zod schemas that
 * validate them (OpenAPI 3.1 speaks JSON Schema 2020-12, which zod writes); responses are described by zod schemas
 * here, next to the routes they describe.
 */
const schema = (zod: z.ZodType): Record<string, unknown> => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(zod, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  });
  return rest;
};

const ApiError = z.object({
  statusCode: z.number().int().min(400).max(599),
  code: z.string().describe('Stable machine-readable code, e.g. VALIDATION.FAILED, POST.VERSION_MISMATCH'),
  message: z.string(),
  errors: z
    .array(z.object({ field: z.string(), message: z.string() }))
    .optional()
    .describe('One entry per field'),
});

/** What anyone may read about a user (GET /users/{id}): no email address. */
const PublicUser = z.strictObject({ id: z.uuid(), username: z.string(), createdAt: z.iso.datetime() });
/** The account as its owner sees it: on registering (POST /users) and signed in (GET /users/me, with the role). */
const Account = z.strictObject({
  id: z.uuid(),
  email: z.string(),
  username: z.string(),
  createdAt: z.iso.datetime(),
  role: z.enum(['user', 'admin']).optional().describe('On GET /users/me; a new role reaches the next token'),
});
const Session = z.strictObject({
  accessToken: z.string().describe('An ES256 JWT: send it as Authorization: Bearer <accessToken>'),
  refreshToken: z.string().describe('Single use: POST /sessions/refresh answers the next pair'),
  tokenType: z.literal('Bearer'),
  expiresIn: z.number().int().positive().describe('Seconds the access token is valid'),
});
const Jwks = z.object({
  keys: z.array(
    z.looseObject({ kty: z.string(), kid: z.string(), alg: z.string().optional(), use: z.string().optional() }),
  ),
});
const Post = z.object({
  id: z.uuid(),
  authorId: z.uuid(),
  title: z.string(),
  body: z.string(),
  version: z.number().int().describe('Also the ETag: "<version>"'),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
const PostPage = z.object({ items: z.array(Post), nextCursor: z.string().nullable() });
const Video = z.object({
  id: z.uuid(),
  status: z.enum(['pending', 'processing', 'completed', 'failed']),
  progress: z.number().int().min(0).max(100),
  metadata: VideoMetadata.nullable(),
  thumbnailUrl: z.string().nullable(),
  previewUrl: z.string().nullable(),
  error: z.string().optional(),
  attempts: z.number().int(),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string) => ({ 'application/json': { schema: ref(name) } });
const error = (description: string) => ({ description, content: json('ApiError') });
const uuidParam = (name: string, zod: z.ZodType) => ({ name, in: 'path', required: true, schema: schema(zod) });
const correlation = {
  name: 'X-Correlation-Id',
  in: 'header',
  required: false,
  description:
    'Carried into every event the request causes and on its log lines; every response echoes it (a new one when absent or not a token of [A-Za-z0-9._:-], at most 128)',
  schema: { type: 'string' },
};
const ifMatch = (required: boolean) => ({
  name: 'If-Match',
  in: 'header',
  required,
  description: 'The ETag of the version last read ("3"), or * for any',
  schema: { type: 'string' },
});
const common = {
  '400': error('Validation failed: one entry per field in `errors`'),
  '429': error('Rate limit (RATE_LIMIT_PER_MINUTE per client IP, REQUEST.RATE_LIMITED); Retry-After may say when'),
  '500': error('Unexpected error'),
};

/** Operations that need `Authorization: Bearer <accessToken>` (POST /sessions answers one). */
const signedIn = { security: [{ bearerAuth: [] }] };
/** Operations anyone may call. */
const anyone = { security: [] };
const unauthorized = {
  '401': error(
    'No access token, or one that does not hold (AUTH.TOKEN_MISSING, AUTH.TOKEN_INVALID, AUTH.TOKEN_EXPIRED); WWW-Authenticate: Bearer',
  ),
};
/** Owner-only reads: a token is optional, and only a token that is sent but does not hold gets a 401. */
const tokenSent = {
  '401': error('An access token was sent and does not hold (AUTH.TOKEN_INVALID, AUTH.TOKEN_EXPIRED)'),
};

/** What the HTTP boundary answers on every route that takes a JSON body, before a handler sees it. */
const jsonBody = {
  '408': error('The body did not arrive whole within HTTP_BODY_TIMEOUT_MS (REQUEST.TIMEOUT); the connection ends'),
  '413': error('The body is larger than 16 KiB (REQUEST.TOO_LARGE)'),
  '415': error('The body is not application/json in UTF-8 (REQUEST.UNSUPPORTED_MEDIA_TYPE)'),
};

function queryParameters(query: z.ZodObject): unknown[] {
  const { properties = {}, required = [] } = schema(query) as {
    properties?: Record<string, unknown>;
    required?: string[];
  };
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: 'query',
    required: required.includes(name),
    schema: property,
  }));
}

/** Stable names for client generators, and the group each operation is listed under (its first path segment). */
const OPERATION_IDS: Record<string, string> = {
  'post /users': 'registerUser',
  'get /users/me': 'getOwnAccount',
  'get /users/{id}': 'getUser',
  'post /sessions': 'signIn',
  'delete /sessions': 'signOut',
  'post /sessions/refresh': 'refreshSession',
  'get /.well-known/jwks.json': 'getSigningKeys',
  'post /posts': 'createPost',
  'get /posts': 'listPosts',
  'get /posts/{id}': 'getPost',
  'patch /posts/{id}': 'updatePost',
  'delete /posts/{id}': 'deletePost',
  'post /videos': 'uploadVideo',
  'get /videos/{id}': 'getVideo',
  'delete /videos/{id}': 'deleteVideo',
  'get /videos/{id}/thumbnail': 'getVideoThumbnail',
  'get /videos/{id}/preview': 'getVideoPreview',
};

type Paths = Record<string, Record<string, Record<string, unknown>>>;

function named(paths: Paths): Paths {
  return Object.fromEntries(
    Object.entries(paths).map(([path, methods]) => [
      path,
      Object.fromEntries(
        Object.entries(methods).map(([method, operation]) => {
          const operationId = OPERATION_IDS[`${method} ${path}`];
          if (!operationId) throw new Error(`no operationId for ${method} ${path}`);
          const tag = path.startsWith('/.well-known') ? 'sessions' : path.split('/')[1];
          return [method, { operationId, tags: [tag], ...operation }];
        }),
      ),
    ]),
  );
}

export function buildOpenApi(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'users-api',
      version: '1.0.0',
      description:
        'Registration (the welcome email is sent by email-service from the user.registered event), sign-in with access and refresh tokens, video upload and processing status, posts with a Redis cache kept correct by events. Posts belong to their author and videos to their uploader: only they may change them (403 POST.NOT_AUTHOR), and a video is visible to its owner only (404 to anyone else). Every write commits its events through a transactional outbox; the events are described by docs/asyncapi.yaml in the repository.',
    },
    servers: [{ url: '/', description: 'This users-api (the same origin as this document)' }],
    tags: [
      { name: 'users', description: 'Registration and the own account; the welcome email follows through Kafka' },
      { name: 'sessions', description: 'Sign-in, refresh, sign-out and the keys access tokens are verified with' },
      { name: 'posts', description: 'Posts, read through a Redis cache that events keep correct' },
      { name: 'videos', description: 'Upload, processing status and renditions, for their owner' },
    ],
    paths: named({
      '/users': {
        post: {
          summary: 'Register a user',
          description: 'Answers at once; the welcome email follows from email-service. Sign in with POST /sessions.',
          ...anyone,
          parameters: [correlation],
          requestBody: { required: true, content: { 'application/json': { schema: schema(RegisterUserBody) } } },
          responses: {
            '201': { description: 'Registered; Location: /users/{id}', content: json('Account') },
            '409': error('Email or username taken (USER.EMAIL_TAKEN, USER.USERNAME_TAKEN)'),
            ...jsonBody,
            ...common,
          },
        },
      },
      '/users/me': {
        get: {
          summary: 'The signed-in user’s own account',
          ...signedIn,
          responses: {
            '200': { description: 'The account, with the email address and the role', content: json('Account') },
            ...unauthorized,
            '404': error('The account of this token no longer exists'),
            ...common,
          },
        },
      },
      '/users/{id}': {
        get: {
          summary: 'A user’s public profile',
          description: 'No email address: that is for the user only (GET /users/me).',
          ...anyone,
          parameters: [uuidParam('id', UserIdParam)],
          responses: {
            '200': { description: 'The public profile', content: json('PublicUser') },
            '404': error('No such user'),
            ...common,
          },
        },
      },
      '/sessions': {
        post: {
          summary: 'Sign in',
          description:
            'A wrong email is answered like a wrong password. Failed sign-ins are counted per account and per client address.',
          ...anyone,
          requestBody: { required: true, content: { 'application/json': { schema: schema(SignInBody) } } },
          responses: {
            '201': { description: 'Signed in: an access token and a refresh token', content: json('Session') },
            '401': error('The email or the password is wrong (AUTH.BAD_CREDENTIALS)'),
            ...jsonBody,
            ...common,
            '429': error(
              'Too many failed sign-ins (AUTH.TOO_MANY_FAILURES, with Retry-After), or the rate limit (REQUEST.RATE_LIMITED)',
            ),
          },
        },
        delete: {
          summary: 'Sign out',
          description: 'The refresh tokens of this sign-in stop working; its access token runs out by itself.',
          ...signedIn,
          responses: { '204': { description: 'Signed out' }, ...unauthorized, ...common },
        },
      },
      '/sessions/refresh': {
        post: {
          summary: 'The next token pair',
          description: 'The refresh token sent is used up; sending a used one again ends the whole sign-in.',
          ...anyone,
          requestBody: { required: true, content: { 'application/json': { schema: schema(RefreshBody) } } },
          responses: {
            '200': { description: 'The next access token and refresh token', content: json('Session') },
            '401': error(
              'Not a refresh token of this API, used already, expired, or its sign-in ended (AUTH.REFRESH_INVALID, AUTH.REFRESH_REUSED, AUTH.REFRESH_EXPIRED, AUTH.REFRESH_REVOKED)',
            ),
            ...jsonBody,
            ...common,
          },
        },
      },
      '/.well-known/jwks.json': {
        get: {
          summary: 'The public keys access tokens are verified with',
          description: 'For the other apps (and anyone); Cache-Control: public, max-age=300.',
          ...anyone,
          responses: { '200': { description: 'A JSON Web Key Set', content: json('Jwks') }, ...common },
        },
      },
      '/posts': {
        post: {
          summary: 'Create a post',
          description: 'The author is the signed-in user; an `authorId` in the body is refused like any unknown field.',
          ...signedIn,
          parameters: [correlation],
          requestBody: { required: true, content: { 'application/json': { schema: schema(CreatePostBody) } } },
          responses: {
            '201': { description: 'Created; ETag: "1"; Location: /posts/{id}', content: json('Post') },
            ...unauthorized,
            '422': error('The signed-in user no longer exists (POST.AUTHOR_NOT_FOUND)'),
            ...jsonBody,
            ...common,
          },
        },
        get: {
          summary: 'Posts, newest first',
          description: 'Keyset pages: pass `nextCursor` as `cursor`. Never cached.',
          ...anyone,
          parameters: queryParameters(ListPostsQuery),
          responses: { '200': { description: 'A page', content: json('PostPage') }, ...common },
        },
      },
      '/posts/{id}': {
        get: {
          summary: 'A post, through the cache',
          description: 'X-Cache: hit (Redis), miss (database, now cached) or bypass (database, Redis unreachable).',
          ...anyone,
          parameters: [uuidParam('id', PostIdParam)],
          responses: {
            '200': { description: 'The post; ETag: "<version>"', content: json('Post') },
            '404': error('No such post'),
            ...common,
          },
        },
        patch: {
          summary: 'Change a post',
          description: 'The author only.',
          ...signedIn,
          parameters: [uuidParam('id', PostIdParam), ifMatch(true), correlation],
          requestBody: { required: true, content: { 'application/json': { schema: schema(UpdatePostBody) } } },
          responses: {
            '200': { description: 'Changed; ETag: the new version', content: json('Post') },
            ...unauthorized,
            '403': error('Someone else’s post (POST.NOT_AUTHOR): nothing changes'),
            '404': error('No such post'),
            '412': error('The post has moved on from the version in If-Match (POST.VERSION_MISMATCH)'),
            '428': error('If-Match is required (POST.IF_MATCH_REQUIRED)'),
            ...jsonBody,
            ...common,
          },
        },
        delete: {
          summary: 'Delete a post',
          description: 'The author only.',
          ...signedIn,
          parameters: [uuidParam('id', PostIdParam), ifMatch(false), correlation],
          responses: {
            '204': { description: 'Deleted' },
            ...unauthorized,
            '403': error('Someone else’s post (POST.NOT_AUTHOR): nothing changes'),
            '404': error('No such post'),
            '412': error('If-Match does not match the current version'),
            ...common,
          },
        },
      },
      '/videos': {
        post: {
          summary: 'Upload a video',
          description:
            'Multipart with one field `file`, streamed to media storage; checked by content (mp4, mov, webm, mkv by default). Processing is queued. The video belongs to the signed-in user. Bearer only: without a token nothing is read, stored or published (a cross-site form post cannot send one).',
          ...signedIn,
          parameters: [correlation],
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  properties: { file: { type: 'string', format: 'binary' } },
                  required: ['file'],
                },
              },
            },
          },
          responses: {
            '202': { description: 'Accepted; Location: /videos/{id}', content: json('Video') },
            ...unauthorized,
            '408': {
              description:
                'The upload did not arrive whole within HTTP_REQUEST_TIMEOUT_MS: Node answers 408 with no body and closes the connection',
            },
            '413': error('Larger than VIDEO_MAX_BYTES (VIDEO.TOO_LARGE)'),
            '415': error(
              'Not multipart (VIDEO.NOT_MULTIPART), or not a video container accepted by VIDEO_CONTAINERS (VIDEO.UNSUPPORTED_TYPE)',
            ),
            ...common,
            '400': error(
              'No file or another field (VALIDATION.FAILED, one entry per field in `errors`), an empty file (VIDEO.EMPTY), a malformed form (VIDEO.MALFORMED_MULTIPART)',
            ),
          },
        },
      },
      '/videos/{id}': {
        get: {
          summary: 'Processing status and result',
          description: 'The owner only: anyone else, signed in or not, gets the 404 of an unknown id.',
          ...signedIn,
          parameters: [uuidParam('id', VideoIdParam)],
          responses: {
            '200': { description: 'The video', content: json('Video') },
            ...tokenSent,
            '404': error('No such video, or not yours (the same answer, signed in or not: VIDEO.NOT_FOUND)'),
            ...common,
          },
        },
        delete: {
          summary: 'Delete a video',
          description:
            'The owner only. 204 once the video is gone (its status is 404 from then on); the video processors then remove the upload and the renditions from media storage and stop its job (video.deleted.v1).',
          ...signedIn,
          parameters: [uuidParam('id', VideoIdParam), correlation],
          responses: {
            '204': { description: 'Deleted; the files follow shortly' },
            ...unauthorized,
            '404': error('No such video, or not yours, or deleted already (VIDEO.NOT_FOUND)'),
            ...common,
          },
        },
      },
      '/videos/{id}/thumbnail': {
        get: {
          summary: 'The JPEG thumbnail',
          description: 'The owner only, as GET /videos/{id}.',
          ...signedIn,
          parameters: [uuidParam('id', VideoIdParam)],
          responses: {
            '200': { description: 'JPEG', content: { 'image/jpeg': {} } },
            ...tokenSent,
            '404': error('No such video or not yours (VIDEO.NOT_FOUND), or not processed yet (VIDEO.NOT_READY)'),
            ...common,
          },
        },
      },
      '/videos/{id}/preview': {
        get: {
          summary: 'The H.264 preview, with range requests',
          description: 'The owner only, as GET /videos/{id}.',
          ...signedIn,
          parameters: [
            uuidParam('id', VideoIdParam),
            { name: 'Range', in: 'header', required: false, schema: { type: 'string' } },
          ],
          responses: {
            '200': { description: 'MP4', content: { 'video/mp4': {} } },
            '206': { description: 'The requested range', content: { 'video/mp4': {} } },
            ...tokenSent,
            '404': error('No such video or not yours (VIDEO.NOT_FOUND), or not processed yet (VIDEO.NOT_READY)'),
            '416': error('Range not satisfiable'),
            ...common,
          },
        },
      },
    }),
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            'The accessToken of POST /sessions (or /sessions/refresh), ES256, verified against /.well-known/jwks.json',
        },
      },
      schemas: {
        ApiError: schema(ApiError),
        PublicUser: schema(PublicUser),
        Account: schema(Account),
        Session: schema(Session),
        Jwks: schema(Jwks),
        Post: schema(Post),
        PostPage: schema(PostPage),
        Video: schema(Video),
      },
    },
  };
}
