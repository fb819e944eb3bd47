import { z } from 'zod';

/**
 * An email the SMTP server accepted: a notice for whoever shows progress (the console, through the notifier), not a
 * command. Published after the send, at most a moment late and possibly twice. Key: the recipient's user id. No
 * address and no body: the notifier streams it to that user's own stream only.
 */
export const EmailSentV1 = z
  .object({
    userId: z.uuid(),
    template: z.literal('welcome'),
    /** The Message-ID the mail carries (`<event id@sender domain>`): the same on a re-send, so it can be found. */
    messageId: z.string().min(3).max(255),
    /** The email.requested.v1 event it answers. */
    requestId: z.uuid(),
  })
  .strict();

export type EmailSentV1 = z.infer<typeof EmailSentV1>;
