import { z } from 'zod';
import { emailAddress, singleLine } from '@app/contracts';
import { normalizePassword, PASSWORD_MAX, passwordProblems } from './password-policy';

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
    // Bounded before the policy runs; the policy counts characters after NFKC normalisation.
    password: z.string({ error: 'is required and must be a string' }).max(PASSWORD_MAX * 4, {
      error: `must be at most ${PASSWORD_MAX} characters`,
    }),
  })
  .strict()
  .superRefine((body, ctx) => {
    for (const message of passwordProblems(body.password, body)) {
      ctx.addIssue({ code: 'custom', path: ['password'], message });
    }
  })
  // What is hashed and compared is the normalised form.
  .transform((body) => ({ ...body, password: normalizePassword(body.password) }));

export type RegisterUserBody = z.infer<typeof RegisterUserBody>;

export const UserIdParam = z.uuid({ error: 'must be a UUID' });

/** The account as its owner sees it, right after registering: the only answer that carries the email address. */
export interface UserResponse {
  id: string;
  email: string;
  username: string;
  createdAt: string;
}

/** What anyone may read about a user: no email address or other personal data. */
export type PublicUserResponse = Omit<UserResponse, 'email'>;

/** The account as its owner reads it (GET /users/me): the role too. */
export interface AccountResponse extends UserResponse {
  role: 'user' | 'admin';
}
