import { z } from 'zod';
import { multiLine, POST_BODY_MAX, POST_TITLE_MAX, singleLine } from '@app/contracts';

const text = () => z.string({ error: 'is required and must be a string' });
const title = text()
  .pipe(singleLine(1, POST_TITLE_MAX))
  .refine((value) => value.trim().length > 0, { error: 'must not be blank' });
const body = text()
  .pipe(multiLine(1, POST_BODY_MAX))
  .refine((value) => value.trim().length > 0, { error: 'must not be blank' });

/**
 * POST /posts body. The author is the signed-in user, never a field: an `authorId` is refused like every other unknown
 * field, not ignored.
 */
export const CreatePostBody = z.object({ title, body }).strict();
export type CreatePostBody = z.infer<typeof CreatePostBody>;

/** PATCH /posts/:id body: the fields to change, at least one. The author does not change. */
export const UpdatePostBody = z
  .object({ title: title.optional(), body: body.optional() })
  .strict()
  .refine((value) => value.title !== undefined || value.body !== undefined, {
    error: 'give at least one of title, body',
  });
export type UpdatePostBody = z.infer<typeof UpdatePostBody>;

export const PostIdParam = z.uuid({ error: 'must be a UUID' });

/** GET /posts query: newest first; `cursor` is the `nextCursor` of the page before. */
export const ListPostsQuery = z
  .object({
    authorId: z.uuid({ error: 'must be a UUID' }).optional(),
    limit: z
      .string()
      .regex(/^\d+$/, { error: 'must be a whole number' })
      .transform(Number)
      .pipe(z.number().int().min(1, { error: 'must be at least 1' }).max(100, { error: 'must be at most 100' }))
      .default(20),
    cursor: z
      .string()
      .max(200)
      .regex(/^[A-Za-z0-9_-]+$/, { error: 'is not a cursor this API gave out' })
      .optional(),
  })
  .strict();
export type ListPostsQuery = z.infer<typeof ListPostsQuery>;

export interface PostResponse {
  id: string;
  authorId: string;
  title: string;
  body: string;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface PostPage {
  items: PostResponse[];
  /** Pass as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
}
