import { z } from 'zod';
import { emailAddress, singleLine } from '../text';

/** A user account was created. Key: user id. Carries no password or hash. */
export const UserRegisteredV1 = z
  .object({
    userId: z.uuid(),
    email: emailAddress,
    username: singleLine(1, 64),
    registeredAt: z.iso.datetime({ offset: true }),
  })
  .strict();

export type UserRegisteredV1 = z.infer<typeof UserRegisteredV1>;
