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

export const emailAddress = z
  .string()
  .max(254, { error: 'must be at most 254 characters' })
  .refine((value) => !CONTROL_CHARACTERS.test(value), { error: 'must not contain line breaks or control characters' })
  .pipe(z.email({ error: 'must be a valid email address' }));
