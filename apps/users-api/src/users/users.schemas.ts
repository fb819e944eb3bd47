import { z } from 'zod';
import { emailAddress, singleLine } from '@app/contracts';

/** POST /users body. Unknown fields (role, isAdmin, id…) are rejected, not ignored. */
export const RegisterUserBody = z
  .object({
    email: z
      .string({ error: 'is required and must be a string' })
      .transform((value) => value.trim().toLowerCase())
      .pipe(emailAddress),
    username: singleLine(3, 32).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, {
      error: 'may contain only letters, digits, dot, dash and underscore, starting with a letter or digit',
    }),
    password: singleLine(12, 128),
  })
  .strict();

export type RegisterUserBody = z.infer<typeof RegisterUserBody>;

export const UserIdParam = z.uuid({ error: 'must be a UUID' });

export interface UserResponse {
  id: string;
  email: string;
  username: string;
  createdAt: string;
}
