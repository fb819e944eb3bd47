import { z } from 'zod';
import { multiLine, singleLine } from '../text';

/** Limits of a post's fields, shared by the API's validation and the event schemas. */
export const POST_TITLE_MAX = 200;
export const POST_BODY_MAX = 20_000;

/** A post as its events carry it: the whole row at the version the event describes. */
const PostState = {
  postId: z.uuid(),
  authorId: z.uuid(),
  title: singleLine(1, POST_TITLE_MAX),
  body: multiLine(1, POST_BODY_MAX),
  /** 1 when created, one more with each change; a cache never holds an older version than one invalidated. */
  version: z.number().int().positive(),
  createdAt: z.iso.datetime({ offset: true }),
  updatedAt: z.iso.datetime({ offset: true }),
};

/** A post was created. Topic `posts`, key: the post id. */
export const PostCreatedV1 = z.object(PostState).strict();

/** A post was changed. Topic `posts`, key: the post id. `version` is the new version. */
export const PostUpdatedV1 = z.object({ ...PostState, changed: z.array(z.enum(['title', 'body'])).min(1) }).strict();

/**
 * A post was deleted. Topic `posts`, key: the post id. `version` is one more than the last version it had, so a
 * cache entry of any version it ever had is older than the deletion.
 */
export const PostDeletedV1 = z
  .object({
    postId: z.uuid(),
    authorId: z.uuid(),
    version: z.number().int().positive(),
    deletedAt: z.iso.datetime({ offset: true }),
  })
  .strict();

export type PostCreatedV1 = z.infer<typeof PostCreatedV1>;
export type PostUpdatedV1 = z.infer<typeof PostUpdatedV1>;
export type PostDeletedV1 = z.infer<typeof PostDeletedV1>;
