import { dictionary } from '@zxcvbn-ts/language-common';

/**
 * The password policy (OWASP ASVS 2.1): 12 to 128 characters after Unicode NFKC normalisation, which is what gets
 * hashed (so "ﬁ" and "fi", or a full-width and an ASCII digit, are the same password); well-formed Unicode only;
 * not one of the ~49,000 common and breached passwords of the zxcvbn-ts list (checked offline, case-insensitively);
 * not the email address, its local part or the username, nor containing them; not one character repeated or
 * blank. No composition rules (ASVS 2.1.9): length and the list do the work.
 */
export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 128;

/** A UTF-16 surrogate without its pair: not a character, and would be hashed as U+FFFD like any other. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const COMMON = new Set(dictionary['passwords-common'].map((word) => word.toLowerCase()));

/** What gets hashed: the NFKC form. */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Why the password is refused, in words for the user; none when it is accepted. */
export function passwordProblems(password: string, account: { email?: string; username?: string }): string[] {
  if (LONE_SURROGATE.test(password)) return ['must be valid Unicode text (it holds an unpaired surrogate)'];
  const normalized = normalizePassword(password);
  const length = [...normalized].length;
  if (length < PASSWORD_MIN) return [`must be at least ${PASSWORD_MIN} characters`];
  if (length > PASSWORD_MAX) return [`must be at most ${PASSWORD_MAX} characters`];
  const lower = normalized.toLowerCase();
  const problems: string[] = [];
  if (normalized.trim() === '' || new Set(lower).size < 4) {
    problems.push('must not be blank or a few characters repeated');
  }
  if (COMMON.has(lower) || COMMON.has(lower.replace(/\s+/g, ''))) {
    problems.push('is a commonly used password (found in lists of breached passwords); choose another');
  }
  const email = account.email?.toLowerCase();
  const localPart = email?.split('@')[0];
  const username = account.username?.toLowerCase();
  if (email && lower.includes(email)) problems.push('must not contain your email address');
  else if (localPart && localPart.length >= 3 && lower.includes(localPart)) {
    problems.push('must not contain the part of your email address before the @');
  }
  if (username && username.length >= 3 && lower.includes(username)) problems.push('must not contain your username');
  return problems;
}
