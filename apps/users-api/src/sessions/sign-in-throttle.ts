import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, UsersApiConfig } from '@app/config';
import { AppError } from '@app/runtime';
import { SCHEMA } from '../schema';

/** Too many failed sign-ins for an account or from a client: 429 with the seconds until its window ends. */
export class SignInThrottledError extends AppError {
  readonly status = 429;
  readonly code = 'AUTH.TOO_MANY_FAILURES';
  override readonly name = 'SignInThrottledError';
  override readonly headers: Record<string, string>;
  constructor(retryAfterSeconds: number) {
    super(`Too many failed sign-ins; try again in ${retryAfterSeconds} s`);
    this.headers = { 'Retry-After': String(retryAfterSeconds) };
  }
}

/**
 * Failed sign-ins counted per account and per client address in a fixed window, in the database so that every
 * replica counts the same. A success clears the account's count, not the client's (one client guessing many
 * accounts stays throttled).
 */
@Injectable()
export class SignInThrottle {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: UsersApiConfig,
  ) {}

  private limits(email: string, client: string): [string, number][] {
    return [
      [`account:${email}`, this.config.AUTH_SIGN_IN_MAX_FAILURES],
      [`client:${client}`, this.config.AUTH_SIGN_IN_MAX_CLIENT_FAILURES],
    ];
  }

  /** Throws SignInThrottledError while the account or the client is over its limit. */
  async check(email: string, client: string): Promise<void> {
    const limits = this.limits(email, client);
    const rows = await this.dataSource.query<{ key: string; failures: number; left_s: number }[]>(
      `SELECT key, failures, ceil(extract(epoch FROM window_ends_at - now()))::int AS left_s
         FROM "${SCHEMA}".sign_in_failures WHERE key = ANY($1) AND window_ends_at > now()`,
      [limits.map(([key]) => key)],
    );
    const over = rows.filter((row) => row.failures >= limits.find(([key]) => key === row.key)![1]);
    if (over.length > 0) throw new SignInThrottledError(Math.max(1, ...over.map((row) => row.left_s)));
  }

  async failed(email: string, client: string): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO "${SCHEMA}".sign_in_failures (key, failures, window_ends_at)
         SELECT key, 1, now() + make_interval(secs => $2) FROM unnest($1::text[]) AS key
       ON CONFLICT (key) DO UPDATE SET
         failures = CASE WHEN sign_in_failures.window_ends_at <= now() THEN 1 ELSE sign_in_failures.failures + 1 END,
         window_ends_at = CASE WHEN sign_in_failures.window_ends_at <= now()
                               THEN excluded.window_ends_at ELSE sign_in_failures.window_ends_at END`,
      [this.limits(email, client).map(([key]) => key), this.config.AUTH_SIGN_IN_WINDOW_SECONDS],
    );
  }

  async succeeded(email: string): Promise<void> {
    await this.dataSource.query(`DELETE FROM "${SCHEMA}".sign_in_failures WHERE key = $1`, [`account:${email}`]);
  }
}
