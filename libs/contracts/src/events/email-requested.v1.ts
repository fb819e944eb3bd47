import { z } from 'zod';
import { emailAddress, singleLine } from '../text';

/**
 * Templates the email-service knows, each with the data it renders.
 * A template is chosen by name; subject and body are the email-service's concern.
 */
export const EmailTemplates = {
  welcome: z.object({ username: singleLine(1, 64) }).strict(),
} as const;

export type EmailTemplateName = keyof typeof EmailTemplates;

const welcome = z
  .object({
    to: emailAddress,
    template: z.literal('welcome'),
    data: EmailTemplates.welcome,
    userId: z.uuid(),
  })
  .strict();

/** An email should be sent once. Key: the recipient's user id. No secrets, no password. */
export const EmailRequestedV1 = z.discriminatedUnion('template', [welcome]);

export type EmailRequestedV1 = z.infer<typeof EmailRequestedV1>;
