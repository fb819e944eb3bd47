import { z } from 'zod';

/** Control characters (CR and LF above all) never enter a field that may end up in a mail header or a log line. */
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

/** A single-line string: no CR, LF or other control characters, bounded length. */
export const singleLine = (min: number, max: number): z.ZodString =>
  z
    .string()
    .min(min, { error: `must be at least ${min} characters` })
    .max(max, { error: `must be at most ${max} characters` })
    .refine((value) => !CONTROL_CHARACTERS.test(value), {
      error: 'must not contain line breaks or control characters',
    });

/**
 * An email address within the limits of RFC 5321 (at most 254 characters, 64 before the @, 63 per domain label), so
 * a mail server does not refuse it after the account exists. Internationalised domains in their ASCII form (`xn--`
 * labels) are refused: their Unicode form can imitate another domain letter for letter (a Cyrillic "а" for a Latin
 * "a"), and the welcome email would carry that look-alike into the user's inbox.
 */
export const emailAddress = z
  .string()
  .max(254, { error: 'must be at most 254 characters' })
  .refine((value) => !CONTROL_CHARACTERS.test(value), { error: 'must not contain line breaks or control characters' })
  .pipe(z.email({ error: 'must be a valid email address' }))
  .refine((value) => value.slice(0, value.lastIndexOf('@')).length <= 64, {
    error: 'the part before the @ must be at most 64 characters',
  })
  .refine(
    (value) =>
      value
        .slice(value.lastIndexOf('@') + 1)
        .split('.')
        .every((label) => label.length <= 63),
    {
      error: 'each part of the domain must be at most 63 characters',
    },
  )
  .refine((value) => !/(^|\.)xn--/i.test(value.slice(value.lastIndexOf('@') + 1)), {
    error: 'internationalised (xn--) domains are not accepted',
  });

/** Characters a multi-line text may not hold: control characters other than line feed and tab (CR included). */
// eslint-disable-next-line no-control-regex
const TEXT_CONTROL_CHARACTERS = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/** A multi-line text (a post's body): line feeds and tabs allowed; CR and other control characters are not. */
export const multiLine = (min: number, max: number): z.ZodString =>
  z
    .string()
    .min(min, { error: `must be at least ${min} characters` })
    .max(max, { error: `must be at most ${max} characters` })
    .refine((value) => !TEXT_CONTROL_CHARACTERS.test(value), {
      error: 'must not contain carriage returns or control characters other than line feed and tab',
    });
