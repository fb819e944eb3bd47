import { emailServiceConfigSchema, usersApiConfigSchema } from './apps';
import { ConfigError, loadConfig } from './config';

const problemsOf = (run: () => unknown): readonly string[] => {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

describe('app configs', () => {
  it('email-service refuses an idle-transaction timeout a slow SMTP send could outlast', () => {
    const problems = problemsOf(() =>
      loadConfig('email-service', emailServiceConfigSchema, { SMTP_TIMEOUT_MS: '30000' }),
    );
    expect(problems).toEqual([
      'DATABASE_IDLE_TRANSACTION_TIMEOUT_MS: must be more than 3 × SMTP_TIMEOUT_MS (90000), or a slow send loses its transaction',
    ]);
    expect(
      loadConfig('email-service', emailServiceConfigSchema, {
        SMTP_TIMEOUT_MS: '30000',
        DATABASE_IDLE_TRANSACTION_TIMEOUT_MS: '120000',
      }).DATABASE_IDLE_TRANSACTION_TIMEOUT_MS,
    ).toBe(120_000);
  });

  it('users-api names a bad relay setting', () => {
    const problems = problemsOf(() =>
      loadConfig('users-api', usersApiConfigSchema, {
        OUTBOX_LOCK_DATABASE_URL: 'mysql://x',
        OUTBOX_LEADER_TIMEOUT_MS: '10',
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^OUTBOX_LEADER_TIMEOUT_MS: .*1000/),
        'OUTBOX_LOCK_DATABASE_URL: must be a postgres:// URL (got "mysql://x")',
      ]),
    );
  });
});
