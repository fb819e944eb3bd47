import { z } from 'zod';
import { PASSWORD_MAX } from '../users/password-policy';

/** POST /sessions. Any string is a candidate: a wrong email is answered like a wrong password. */
export const SignInBody = z
  .object({
    email: z
      .string({ error: 'is required and must be a string' })
      .max(320, { error: 'must be at most 320 characters' })
      .transform((value) => value.trim().toLowerCase()),
    password: z
      .string({ error: 'is required and must be a string' })
      .min(1, { error: 'is required' })
      .max(PASSWORD_MAX * 4, { error: `must be at most ${PASSWORD_MAX} characters` }),
  })
  .strict();

export type SignInBody = z.infer<typeof SignInBody>;

/** POST /sessions/refresh. */
export const RefreshBody = z
  .object({
    refreshToken: z.string({ error: 'is required and must be a string' }).min(1, { error: 'is required' }).max(200),
  })
  .strict();

export type RefreshBody = z.infer<typeof RefreshBody>;

/** What a sign-in and a refresh answer. */
export interface SessionResponse {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  /** Seconds the access token is valid. */
  expiresIn: number;
}
