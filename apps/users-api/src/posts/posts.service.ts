import { randomUUID } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { PostCache } from '@app/cache';
import type { PayloadOf } from '@app/contracts';
import { pgErrorOf, PgErrorCode } from '@app/database';
import { errorMessageOf } from '@app/messaging';
import { OutboxWriter } from '@app/outbox';
import {
  ForbiddenError,
  NotFoundError,
  PreconditionError,
  UnprocessableError,
  ValidationFailedError,
} from '../common/app-error';
import { SCHEMA } from '../schema';
import { SOURCE } from '../users/users.service';
import { CreatePostBody, ListPostsQuery, PostIdParam, PostPage, PostResponse, UpdatePostBody } from './posts.schemas';

const COLUMNS = `id, author_id, title, body, version, created_at, updated_at`;

interface PostRow {
  id: string;
  author_id: string;
  title: string;
  body: string;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/** Where a read was answered from: the cache, the database after a miss, or the database with Redis unreachable. */
export type CacheOutcome = 'hit' | 'miss' | 'bypass';

/** `*` (any version) or the version an ETag names. */
export type Precondition = number | '*';

/**
 * Posts. The author of a post is the signed-in user who created it; only they may change or delete it (the check is
 * part of the UPDATE or DELETE itself, so no race lets another through). Each write commits the row and its event (post.created/updated/deleted.v1 on `posts`, key = post id) in one
 * transaction. Reads go through the cache; this service only ever fills it — removing stale entries is the
 * cache-invalidator's job, driven by the events.
 */
@Injectable()
export class PostsService {
  private readonly logger = new Logger(PostsService.name);

  constructor(
    private readonly dataSource: DataSource,
    private readonly outbox: OutboxWriter,
    private readonly cache: PostCache,
  ) {}

  async create(authorId: string, input: CreatePostBody, correlationId: string): Promise<PostResponse> {
    const id = randomUUID();
    try {
      return await this.dataSource.transaction(async (tx) => {
        const [row] = await tx.query<PostRow[]>(
          `INSERT INTO "${SCHEMA}".posts (id, author_id, title, body) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
          [id, authorId, input.title, input.body],
        );
        const post = toResponse(row);
        await this.publish(tx, 'post.created.v1', stateOf(post), correlationId);
        this.logger.log(`post ${id} created by ${authorId}`);
        return post;
      });
    } catch (error) {
      const pg = pgErrorOf(error);
      // A token outliving its account (the user row is gone).
      if (pg.code === PgErrorCode.ForeignKeyViolation) {
        throw new UnprocessableError('POST.AUTHOR_NOT_FOUND', `The signed-in user ${authorId} no longer exists`);
      }
      throw error;
    }
  }

  /** Cache-aside: the cache when it has the post, else the database (then the cache is filled with that version). */
  async get(id: string): Promise<{ post: PostResponse; cache: CacheOutcome }> {
    // The generation the miss was seen in: the fill must land in it, or not at all (Redis restarted meanwhile).
    let generation: string | undefined;
    try {
      const found = await this.cache.lookup<PostResponse>(id);
      if (found.entry) return { post: found.entry.value, cache: 'hit' };
      generation = found.generation;
    } catch (error) {
      this.logger.debug(`post cache unreachable, reading ${id} from the database: ${errorMessageOf(error)}`);
    }
    const [row] = await this.dataSource.query<PostRow[]>(`SELECT ${COLUMNS} FROM "${SCHEMA}".posts WHERE id = $1`, [
      id,
    ]);
    if (!row) throw notFound(id);
    const post = toResponse(row);
    if (generation === undefined) return { post, cache: 'bypass' };
    // Refused when a newer version was invalidated since this read: the entry stays empty rather than stale.
    await this.cache.fill(id, generation, post.version, post).catch((error: unknown) => {
      this.logger.debug(`post ${id} not cached: ${errorMessageOf(error)}`);
    });
    return { post, cache: 'miss' };
  }

  /** Newest first, by (created_at, id) keyset: a page never skips or repeats a post while others are added. */
  async list(query: ListPostsQuery): Promise<PostPage> {
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const conditions: string[] = [];
    const params: unknown[] = [];
    if (query.authorId) {
      params.push(query.authorId);
      conditions.push(`author_id = $${params.length}`);
    }
    if (after) {
      params.push(after.createdAt, after.id);
      conditions.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    params.push(query.limit + 1);
    let rows: (PostRow & { cursor_at: string })[];
    try {
      rows = await this.dataSource.query(
        `SELECT ${COLUMNS}, created_at::text AS cursor_at FROM "${SCHEMA}".posts
          ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''}
          ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
        params,
      );
    } catch (error) {
      // A cursor whose timestamp PostgreSQL cannot read was not one this API gave out.
      if (after && /^22/.test(pgErrorOf(error).code ?? '')) throw badCursor();
      throw error;
    }
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return {
      items: page.map(toResponse),
      nextCursor: rows.length > query.limit && last ? encodeCursor(last.cursor_at, last.id) : null,
    };
  }

  async update(
    userId: string,
    id: string,
    expected: Precondition,
    input: UpdatePostBody,
    correlationId: string,
  ): Promise<PostResponse> {
    return this.dataSource.transaction(async (tx) => {
      // TypeORM answers UPDATE and DELETE with [rows, affected].
      const [[row]] = await tx.query<[PostRow[], number]>(
        `UPDATE "${SCHEMA}".posts
            SET title = COALESCE($3, title), body = COALESCE($4, body), version = version + 1, updated_at = now()
          WHERE id = $1 AND ($2::int IS NULL OR version = $2) AND author_id = $5
          RETURNING ${COLUMNS}`,
        [id, expected === '*' ? null : expected, input.title ?? null, input.body ?? null, userId],
      );
      if (!row) throw await this.whyNot(tx, id, userId, expected);
      const post = toResponse(row);
      const changed = (['title', 'body'] as const).filter((field) => input[field] !== undefined);
      await this.publish(tx, 'post.updated.v1', { ...stateOf(post), changed }, correlationId);
      this.logger.log(`post ${id} updated to version ${post.version}`);
      return post;
    });
  }

  async remove(userId: string, id: string, expected: Precondition, correlationId: string): Promise<void> {
    await this.dataSource.transaction(async (tx) => {
      const [[row]] = await tx.query<[{ author_id: string; version: number }[], number]>(
        `DELETE FROM "${SCHEMA}".posts WHERE id = $1 AND ($2::int IS NULL OR version = $2) AND author_id = $3
          RETURNING author_id, version`,
        [id, expected === '*' ? null : expected, userId],
      );
      if (!row) throw await this.whyNot(tx, id, userId, expected);
      // One past the last version: every cache entry the post ever had is older than its deletion.
      await this.publish(
        tx,
        'post.deleted.v1',
        { postId: id, authorId: row.author_id, version: row.version + 1, deletedAt: new Date().toISOString() },
        correlationId,
      );
      this.logger.log(`post ${id} deleted at version ${row.version}`);
    });
  }

  /** Why a write matched no row: no such post, someone else's (before any version talk), or another version. */
  private async whyNot(tx: EntityManager, id: string, userId: string, expected: Precondition): Promise<Error> {
    const [current] = await tx.query<{ version: number; author_id: string }[]>(
      `SELECT version, author_id FROM "${SCHEMA}".posts WHERE id = $1`,
      [id],
    );
    if (!current) return notFound(id);
    if (current.author_id !== userId) {
      return new ForbiddenError('POST.NOT_AUTHOR', 'Only the author of a post may change or delete it');
    }
    return new PreconditionError(
      412,
      'POST.VERSION_MISMATCH',
      `The post is at version ${current.version}, not ${String(expected)}: fetch it again and reapply the change`,
    );
  }

  private publish<T extends 'post.created.v1' | 'post.updated.v1' | 'post.deleted.v1'>(
    tx: EntityManager,
    type: T,
    data: PayloadOf<T>,
    correlationId: string,
  ): Promise<unknown> {
    const id = data.postId;
    return this.outbox.add(tx, type, data, { key: id, source: SOURCE, correlationId, subject: `post/${id}` });
  }
}

function toResponse(row: PostRow): PostResponse {
  return {
    id: row.id,
    authorId: row.author_id,
    title: row.title,
    body: row.body,
    version: row.version,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function stateOf(post: PostResponse): PayloadOf<'post.created.v1'> {
  const { id, ...rest } = post;
  return { postId: id, ...rest };
}

function notFound(id: string): NotFoundError {
  return new NotFoundError('POST.NOT_FOUND', `No post with id ${id}`);
}

function badCursor(): ValidationFailedError {
  return new ValidationFailedError([{ field: 'cursor', message: 'is not a cursor this API gave out' }]);
}

/** Opaque to clients: the last row's exact created_at (microseconds, as PostgreSQL prints it) and id. */
function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(`${createdAt}|${id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const [createdAt, id, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (
    !createdAt ||
    !id ||
    rest.length > 0 ||
    !PostIdParam.safeParse(id).success ||
    !/^\d{4}-\d{2}-\d{2} [\d:.+-]+$/.test(createdAt)
  ) {
    throw badCursor();
  }
  return { createdAt, id };
}
