import { randomUUID } from 'node:crypto';
import type { UsersApiConfig } from '@app/config';
import { Initial1764000000000 } from '../apps/users-api/src/migrations/1764000000000-initial';
import { Sessions1764400000000 } from '../apps/users-api/src/migrations/1764400000000-sessions';
import { RefreshTokens } from '../apps/users-api/src/sessions/refresh-tokens';
import { SignInThrottle, SignInThrottledError } from '../apps/users-api/src/sessions/sign-in-throttle';
import { SCHEMA } from '../apps/users-api/src/schema';
import { createScratchSchema, ScratchSchema } from './support/scratch-database';

/** The sign-in SQL against real PostgreSQL: refresh-token families and the failure windows, in seconds. */
describe('sessions SQL', () => {
  let db: ScratchSchema;
  const config = {
    AUTH_REFRESH_TOKEN_TTL_SECONDS: 3600,
    AUTH_SIGN_IN_MAX_FAILURES: 2,
    AUTH_SIGN_IN_MAX_CLIENT_FAILURES: 3,
    AUTH_SIGN_IN_WINDOW_SECONDS: 60,
  } as UsersApiConfig;
  let userId: string;

  beforeAll(async () => {
    db = await createScratchSchema(SCHEMA, async (runner) => {
      await new Initial1764000000000().up(runner);
      await new Sessions1764400000000().up(runner);
    });
    userId = randomUUID();
    await db.client.query(
      `INSERT INTO "${SCHEMA}".users (id, email, username, password_hash) VALUES ($1, $2, $3, 'x')`,
      [userId, 'ann@example.com', 'ann'],
    );
  });

  afterAll(async () => {
    await db?.close();
  });

  it('a family: each token once; two callers racing with one token get one new token and a revoked family', async () => {
    const tokens = new RefreshTokens(db.dataSource, config);
    const first = await db.dataSource.transaction((tx) => tokens.issue(tx, userId, randomUUID()));
    const outcomes = await Promise.allSettled([tokens.rotate(first), tokens.rotate(first)]);
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost.map((o) => (o.reason as { code: string }).code)).toEqual(['AUTH.REFRESH_REUSED']);
    // The winner's new token is of the revoked family too.
    const next = (won[0] as PromiseFulfilledResult<{ refreshToken: string }>).value.refreshToken;
    await expect(tokens.rotate(next)).rejects.toMatchObject({ code: 'AUTH.REFRESH_REVOKED' });
    const { rows } = await db.client.query<{ hash: Buffer }>(
      `SELECT token_hash AS hash FROM "${SCHEMA}".refresh_tokens`,
    );
    // Only hashes are kept: no row holds a token's secret.
    for (const row of rows) expect(first.includes(row.hash.toString('base64url'))).toBe(false);
  });

  it('an expired refresh token is refused; a wrong secret for a real id is not a token', async () => {
    const tokens = new RefreshTokens(db.dataSource, config);
    const token = await db.dataSource.transaction((tx) => tokens.issue(tx, userId, randomUUID()));
    const [id] = token.split('.');
    await expect(tokens.rotate(`${id}.${'A'.repeat(43)}`)).rejects.toMatchObject({ code: 'AUTH.REFRESH_INVALID' });
    await db.client.query(`UPDATE "${SCHEMA}".refresh_tokens SET expires_at = now() - interval '1 s' WHERE id = $1`, [
      id,
    ]);
    await expect(tokens.rotate(token)).rejects.toMatchObject({ code: 'AUTH.REFRESH_EXPIRED' });
  });

  it('counts failures per account and per client in a window; a success clears the account only', async () => {
    const throttle = new SignInThrottle(db.dataSource, config);
    await throttle.failed('bo@example.com', '10.0.0.1');
    await throttle.check('bo@example.com', '10.0.0.1');
    await throttle.failed('bo@example.com', '10.0.0.1');
    await expect(throttle.check('bo@example.com', '10.0.0.2')).rejects.toBeInstanceOf(SignInThrottledError);
    await throttle.succeeded('bo@example.com');
    await throttle.check('bo@example.com', '10.0.0.2');
    // The client has two failures of three: one more, for any account, and it is refused for every account.
    await throttle.failed('cy@example.com', '10.0.0.1');
    const refused = await throttle.check('dee@example.com', '10.0.0.1').catch((error: SignInThrottledError) => error);
    expect(refused).toBeInstanceOf(SignInThrottledError);
    expect(Number((refused as SignInThrottledError).headers['Retry-After'])).toBeGreaterThan(50);
    // Once the window has passed, counting starts again from one.
    await db.client.query(`UPDATE "${SCHEMA}".sign_in_failures SET window_ends_at = now() - interval '1 s'`);
    await throttle.check('dee@example.com', '10.0.0.1');
    await throttle.failed('dee@example.com', '10.0.0.1');
    const { rows } = await db.client.query<{ failures: number }>(
      `SELECT failures FROM "${SCHEMA}".sign_in_failures WHERE key = 'client:10.0.0.1'`,
    );
    expect(rows[0].failures).toBe(1);
  });
});
