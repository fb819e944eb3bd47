import { APP_CONFIG_SCHEMAS, APP_PORTS, emailServiceConfigSchema, usersApiConfigSchema } from './apps';
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
  it('every app listens on its own default port, the one npm start prints', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the CommonJS helper the shell reads
    const { ports } = require('../../../scripts/apps.js') as { ports: Record<string, number> };
    expect(ports).toEqual(APP_PORTS);
    const defaults = Object.entries(APP_CONFIG_SCHEMAS).map(([app, schema]) => loadConfig(app, schema, {}).PORT);
    expect(defaults).toEqual(Object.keys(APP_CONFIG_SCHEMAS).map((app) => APP_PORTS[app as keyof typeof APP_PORTS]));
    expect(new Set(defaults).size).toBe(defaults.length);
  });

  it('a port that is not a number stops the boot with the variable named', () => {
    expect(problemsOf(() => loadConfig('notifier', APP_CONFIG_SCHEMAS.notifier, { PORT: 'http' }))).toEqual([
      'PORT: must be a whole number (got "http")',
    ]);
  });

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
