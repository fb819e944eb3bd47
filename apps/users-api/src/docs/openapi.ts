import { z } from 'zod';
import { VideoMetadata } from '@app/contracts';
import { CreatePostBody, ListPostsQuery, PostIdParam, UpdatePostBody } from '../posts/posts.schemas';
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

const User = z.object({ id: z.uuid(), email: z.string(), username: z.string(), createdAt: z.iso.datetime() });
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
  '429': error('Rate limit (RATE_LIMIT_PER_MINUTE per client IP)'),
  '500': error('Unexpected error'),
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
  'get /users/{id}': 'getUser',
  'post /posts': 'createPost',
  'get /posts': 'listPosts',
  'get /posts/{id}': 'getPost',
  'patch /posts/{id}': 'updatePost',
  'delete /posts/{id}': 'deletePost',
  'post /videos': 'uploadVideo',
  'get /videos/{id}': 'getVideo',
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
          return [method, { operationId, tags: [path.split('/')[1]], ...operation }];
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
        'Registration (the welcome email is sent by email-service from the user.registered event), video upload and processing status, posts with a Redis cache kept correct by events. Every write commits its events through a transactional outbox; the events are described by docs/asyncapi.yaml in the repository.',
    },
    tags: [
      { name: 'users', description: 'Registration; the welcome email follows through Kafka' },
      { name: 'posts', description: 'Posts, read through a Redis cache that events keep correct' },
      { name: 'videos', description: 'Upload, processing status and renditions' },
    ],
    paths: named({
      '/users': {
        post: {
          summary: 'Register a user',
          description: 'Answers at once; the welcome email follows from email-service.',
          parameters: [correlation],
          requestBody: { required: true, content: { 'application/json': { schema: schema(RegisterUserBody) } } },
          responses: {
            '201': { description: 'Registered; Location: /users/{id}', content: json('User') },
            '409': error('Email or username taken (USER.EMAIL_TAKEN, USER.USERNAME_TAKEN)'),
            ...jsonBody,
            ...common,
          },
        },
      },
      '/users/{id}': {
        get: {
          summary: 'A user',
          parameters: [uuidParam('id', UserIdParam)],
          responses: {
            '200': { description: 'The user', content: json('User') },
            '404': error('No such user'),
            ...common,
          },
        },
      },
      '/posts': {
        post: {
          summary: 'Create a post',
          parameters: [correlation],
          requestBody: { required: true, content: { 'application/json': { schema: schema(CreatePostBody) } } },
          responses: {
            '201': { description: 'Created; ETag: "1"; Location: /posts/{id}', content: json('Post') },
            '422': error('The author does not exist (POST.AUTHOR_NOT_FOUND)'),
            ...jsonBody,
            ...common,
          },
        },
        get: {
          summary: 'Posts, newest first',
          description: 'Keyset pages: pass `nextCursor` as `cursor`. Never cached.',
          parameters: queryParameters(ListPostsQuery),
          responses: { '200': { description: 'A page', content: json('PostPage') }, ...common },
        },
      },
      '/posts/{id}': {
        get: {
          summary: 'A post, through the cache',
          description: 'X-Cache: hit (Redis), miss (database, now cached) or bypass (database, Redis unreachable).',
          parameters: [uuidParam('id', PostIdParam)],
          responses: {
            '200': { description: 'The post; ETag: "<version>"', content: json('Post') },
            '404': error('No such post'),
            ...common,
          },
        },
        patch: {
          summary: 'Change a post',
          parameters: [uuidParam('id', PostIdParam), ifMatch(true), correlation],
          requestBody: { required: true, content: { 'application/json': { schema: schema(UpdatePostBody) } } },
          responses: {
            '200': { description: 'Changed; ETag: the new version', content: json('Post') },
            '404': error('No such post'),
            '412': error('The post has moved on from the version in If-Match (POST.VERSION_MISMATCH)'),
            '428': error('If-Match is required (POST.IF_MATCH_REQUIRED)'),
            ...jsonBody,
            ...common,
          },
        },
        delete: {
          summary: 'Delete a post',
          parameters: [uuidParam('id', PostIdParam), ifMatch(false), correlation],
          responses: {
            '204': { description: 'Deleted' },
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
            'Multipart with one field `file`, streamed to media storage; checked by content (mp4, mov, webm, mkv by default). Processing is queued.',
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
          parameters: [uuidParam('id', VideoIdParam)],
          responses: {
            '200': { description: 'The video', content: json('Video') },
            '404': error('No such video'),
            ...common,
          },
        },
      },
      '/videos/{id}/thumbnail': {
        get: {
          summary: 'The JPEG thumbnail',
          parameters: [uuidParam('id', VideoIdParam)],
          responses: {
            '200': { description: 'JPEG', content: { 'image/jpeg': {} } },
            '404': error('No such video, or not processed yet'),
            ...common,
          },
        },
      },
      '/videos/{id}/preview': {
        get: {
          summary: 'The H.264 preview, with range requests',
          parameters: [
            uuidParam('id', VideoIdParam),
            { name: 'Range', in: 'header', required: false, schema: { type: 'string' } },
          ],
          responses: {
            '200': { description: 'MP4', content: { 'video/mp4': {} } },
            '206': { description: 'The requested range', content: { 'video/mp4': {} } },
            '404': error('No such video, or not processed yet'),
            '416': error('Range not satisfiable'),
            ...common,
          },
        },
      },
    }),
    components: {
      schemas: {
        ApiError: schema(ApiError),
        User: schema(User),
        Post: schema(Post),
        PostPage: schema(PostPage),
        Video: schema(Video),
      },
    },
  };
}
