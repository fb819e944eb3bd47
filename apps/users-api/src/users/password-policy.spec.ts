import { RegisterUserBody } from './users.schemas';

const account = { email: 'ann.lee@example.com', username: 'annlee' };
const problemsOf = (password: string, body: Partial<typeof account> = {}) => {
  const result = RegisterUserBody.safeParse({ ...account, ...body, password });
  return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
};

describe('password policy', () => {
  it.each([
    ['one character repeated', 'aaaaaaaaaaaa', 'password: must not be blank or a few characters repeated'],
    ['twelve spaces', ' '.repeat(12), 'password: must not be blank or a few characters repeated'],
    ['a common password', 'password1234', 'password: is a commonly used password'],
    ['a common password in capitals', 'PASSWORD1234', 'password: is a commonly used password'],
    ['the email address', 'ann.lee@example.com', 'password: must not contain your email address'],
    ['the local part inside', 'my ann.lee secret!', 'password: must not contain the part of your email address'],
    ['the username inside', 'xx-AnnLee-2024-yy', 'password: must not contain your username'],
    ['a lone surrogate', 'valid text \ud800 here', 'password: must be valid Unicode text'],
    ['eleven characters', 'abcdefghijk', 'password: must be at least 12 characters'],
  ])('refuses %s', (_name, password, expected) => {
    expect(problemsOf(password)).toEqual([expect.stringContaining(expected)]);
  });

  it('accepts a long passphrase and hashes its NFKC form', () => {
    const result = RegisterUserBody.parse({ ...account, password: 'ﬁne ｗｏｒｄｓ，horse battery' });
    expect(result.password).toBe('fine words,horse battery');
    // Different inputs that normalise alike are the same password.
    expect(RegisterUserBody.parse({ ...account, password: 'fine words,horse battery' }).password).toBe(result.password);
  });
});

describe('email address limits (RFC 5321)', () => {
  const emailProblems = (email: string) => {
    const result = RegisterUserBody.safeParse({ email, username: 'annlee', password: 'correct horse battery' });
    return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  };

  it('takes 64 characters before the @ and refuses 65', () => {
    expect(emailProblems(`${'a'.repeat(64)}@example.com`)).toEqual([]);
    expect(emailProblems(`${'a'.repeat(65)}@example.com`)).toEqual([
      'email: the part before the @ must be at most 64 characters',
    ]);
  });

  it('refuses 255 characters in all, a 64-character domain label, and a punycode domain', () => {
    const labels = `${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}`;
    expect(`${'a'.repeat(64)}@${labels}.ee.com`).toHaveLength(254);
    expect(emailProblems(`${'a'.repeat(64)}@${labels}.ee.com`)).toEqual([]);
    expect(emailProblems(`${'a'.repeat(64)}@${labels}.eee.com`)).toEqual(['email: must be at most 254 characters']);
    expect(emailProblems(`ann@${'b'.repeat(64)}.com`)).toEqual([
      'email: each part of the domain must be at most 63 characters',
    ]);
    expect(emailProblems('ann@xn--pple-43d.com')).toEqual(['email: internationalised (xn--) domains are not accepted']);
  });
});
