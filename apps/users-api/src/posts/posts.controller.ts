import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Patch, Post, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import { PreconditionError, ValidationFailedError } from '../common/app-error';
import { CreatePostBody, ListPostsQuery, PostIdParam, PostPage, PostResponse, UpdatePostBody } from './posts.schemas';
import { Precondition, PostsService } from './posts.service';
import { CorrelationId } from '@app/runtime';
import { Authenticated, CurrentUser, Identity } from '@app/auth';

/** A post's version as its strong ETag: `"3"`. */
const etagOf = (post: PostResponse) => `"${post.version}"`;

/** `If-Match: "3"` (or `*`); a missing header is allowed only where `required` is false. */
function preconditionOf(header: string | undefined, required: boolean): Precondition | undefined {
  if (header === undefined || header.trim() === '') {
    if (!required) return undefined;
    throw new PreconditionError(
      428,
      'POST.IF_MATCH_REQUIRED',
      'Send If-Match with the ETag of the version you last read (GET /posts/:id answers it), or * to overwrite',
    );
  }
  const value = header.trim();
  if (value === '*') return '*';
  const match = /^"(\d{1,9})"$/.exec(value);
  if (!match) {
    throw new ValidationFailedError([
      { field: 'If-Match', message: 'must be an ETag this API gave out, like "3", or *' },
    ]);
  }
  return Number(match[1]);
}

/** Reading is public; writing needs a signed-in user, and only a post's author may change or delete it. */
@Controller('posts')
export class PostsController {
  constructor(private readonly posts: PostsService) {}

  @Post()
  @HttpCode(201)
  @Authenticated()
  async create(
    @Body({ schema: CreatePostBody }) body: CreatePostBody,
    @CurrentUser() identity: Identity,
    @CorrelationId() correlationId: string,
    @Res({ passthrough: true }) response: Response,
  ): Promise<PostResponse> {
    const post = await this.posts.create(identity.userId, body, correlationId);
    response.setHeader('Location', `/posts/${post.id}`);
    response.setHeader('ETag', etagOf(post));
    return post;
  }

  @Get()
  list(@Query({ schema: ListPostsQuery }) query: ListPostsQuery): Promise<PostPage> {
    return this.posts.list(query);
  }

  @Get(':id')
  async findOne(
    @Param('id', { schema: PostIdParam }) id: string,
    @Res({ passthrough: true }) response: Response,
  ): Promise<PostResponse> {
    const { post, cache } = await this.posts.get(id);
    response.setHeader('ETag', etagOf(post));
    // hit: from Redis; miss: from the database, now cached; bypass: from the database, Redis unreachable.
    response.setHeader('X-Cache', cache);
    return post;
  }

  @Patch(':id')
  @Authenticated()
  async update(
    @Param('id', { schema: PostIdParam }) id: string,
    @Body({ schema: UpdatePostBody }) body: UpdatePostBody,
    @CurrentUser() identity: Identity,
    @Headers('if-match') ifMatch: string | undefined,
    @CorrelationId() correlationId: string,
    @Res({ passthrough: true }) response: Response,
  ): Promise<PostResponse> {
    const expected = preconditionOf(ifMatch, true) as Precondition;
    const post = await this.posts.update(identity.userId, id, expected, body, correlationId);
    response.setHeader('ETag', etagOf(post));
    return post;
  }

  @Delete(':id')
  @HttpCode(204)
  @Authenticated()
  async remove(
    @Param('id', { schema: PostIdParam }) id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @CurrentUser() identity: Identity,
    @CorrelationId() correlationId: string,
  ): Promise<void> {
    await this.posts.remove(identity.userId, id, preconditionOf(ifMatch, false) ?? '*', correlationId);
  }
}
