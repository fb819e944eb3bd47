import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TEST_DATABASE_URL } from './env';

/** A registered, signed-in user of a running users-api, as a client holds it. */
export interface Account {
  userId: string;
  email: string;
  username: string;
  password: string;
  accessToken: string;
  refreshToken: string;
  /** `{ authorization: 'Bearer …' }`, to spread into a request's headers. */
  auth: { authorization: string };
}

export interface SessionAnswer {
  accessToken: string;
  refreshToken: string;
  tokenType: string;
  expiresIn: number;
}

const json = (body: unknown) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

/** `POST /sessions`: the answer as it came (status and body), for tests of refusals too. */
export async function signInAnswer(apiUrl: string, email: string, password: string) {
  const response = await fetch(`${apiUrl}/sessions`, json({ email, password }));
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

export async function signIn(apiUrl: string, email: string, password: string): Promise<SessionAnswer> {
  const answer = await signInAnswer(apiUrl, email, password);
  if (answer.status !== 201) throw new Error(`sign-in of ${email}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body as unknown as SessionAnswer;
}

/** Registers a new user (`POST /users`) and signs them in (`POST /sessions`). */
export async function signUp(apiUrl: string, name = `u${randomUUID().slice(0, 10)}`): Promise<Account> {
  const email = `${name}@example.com`;
  const password = `correct horse battery ${randomUUID().slice(0, 6)} staple`;
  const registered = await fetch(`${apiUrl}/users`, json({ email, username: name, password }));
  if (registered.status !== 201)
    throw new Error(`registration of ${name}: ${registered.status} ${await registered.text()}`);
  const { id } = (await registered.json()) as { id: string };
  const session = await signIn(apiUrl, email, password);
  return {
    userId: id,
    email,
    username: name,
    password,
    accessToken: session.accessToken,
    refreshToken: session.refreshToken,
    auth: { authorization: `Bearer ${session.accessToken}` },
  };
}

/** `npm run users -- grant-admin <email>` on the tests' database: the role reaches the account's next token. */
export async function grantAdmin(email: string): Promise<void> {
  await promisify(execFile)(
    process.execPath,
    ['-r', '@swc-node/register', 'apps/users-api/src/users/users.cli.ts', 'grant-admin', email],
    { cwd: join(__dirname, '..', '..'), env: { ...process.env, DATABASE_URL: TEST_DATABASE_URL } },
  );
}
