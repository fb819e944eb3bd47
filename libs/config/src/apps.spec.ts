import {
  APP_CONFIG_SCHEMAS,
  APP_PORTS,
  consoleConfigSchema,
  emailServiceConfigSchema,
  usersApiConfigSchema,
} from './apps';
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

  it('email-service refuses a send deadline that one reply within SMTP_TIMEOUT_MS could use up', () => {
    const problems = problemsOf(() =>
      loadConfig('email-service', emailServiceConfigSchema, {
        SMTP_TIMEOUT_MS: '30000',
        SMTP_SEND_DEADLINE_MS: '30000',
      }),
    );
    expect(problems).toEqual([
      'SMTP_SEND_DEADLINE_MS: must be more than SMTP_TIMEOUT_MS (30000), or a server that answers within its timeout is cut off (got "30000")',
    ]);
    // The inbox keeps its transaction alive during a send: an idle timeout below the SMTP timeout is allowed.
    const config = loadConfig('email-service', emailServiceConfigSchema, {
      SMTP_TIMEOUT_MS: '30000',
      DATABASE_IDLE_TRANSACTION_TIMEOUT_MS: '5000',
    });
    expect([config.SMTP_SEND_DEADLINE_MS, config.DATABASE_IDLE_TRANSACTION_TIMEOUT_MS]).toEqual([60_000, 5000]);
  });

  it('every app refuses Kafka security and replication settings that could never work, naming each', () => {
    for (const [app, schema] of Object.entries(APP_CONFIG_SCHEMAS)) {
      const problems = problemsOf(() =>
        loadConfig(app, schema, {
          KAFKA_SSL_CA_FILE: __filename,
          KAFKA_SSL_CERT_FILE: '/no/such/client.pem',
          KAFKA_SASL_MECHANISM: 'scram-sha-512',
          KAFKA_REPLICATION_FACTOR: '3',
          KAFKA_MIN_INSYNC_REPLICAS: '4',
        }),
      );
      expect(problems).toEqual(
        expect.arrayContaining([
          'KAFKA_SASL_USERNAME: KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required when KAFKA_SASL_MECHANISM is set',
          `KAFKA_SSL_CA_FILE: needs KAFKA_SSL=true (got "${__filename}")`,
          'KAFKA_SSL_CERT_FILE: needs KAFKA_SSL=true (got "/no/such/client.pem")',
          'KAFKA_SSL_CERT_FILE: KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (a client certificate and its key) (got "/no/such/client.pem")',
          'KAFKA_MIN_INSYNC_REPLICAS: must not exceed KAFKA_REPLICATION_FACTOR (3): no write could be acknowledged (got "4")',
        ]),
      );
    }
    expect(
      problemsOf(() =>
        loadConfig('email-service', emailServiceConfigSchema, {
          KAFKA_SSL: 'true',
          KAFKA_SSL_CA_FILE: '/no/such/ca.pem',
        }),
      ),
    ).toEqual(['KAFKA_SSL_CA_FILE: cannot be read (got "/no/such/ca.pem")']);
    const secured = loadConfig('email-service', emailServiceConfigSchema, {
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: __filename,
      KAFKA_REPLICATION_FACTOR: '3',
      KAFKA_MIN_INSYNC_REPLICAS: '2',
    });
    expect([secured.KAFKA_SSL, secured.KAFKA_REPLICATION_FACTOR, secured.KAFKA_MIN_INSYNC_REPLICAS]).toEqual([
      true,
      3,
      2,
    ]);
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

  it('the console reads its settings and names each bad one', () => {
    const config = loadConfig('console', consoleConfigSchema, {
      CONSOLE_APPS: 'users-api=http://api:3000/, notifier=http://notifier:3004',
      CONSOLE_GROUPS: 'email-service, video-processor',
    });
    expect(config.CONSOLE_APPS).toEqual([
      { name: 'users-api', url: 'http://api:3000' },
      { name: 'notifier', url: 'http://notifier:3004' },
    ]);
    expect(config.CONSOLE_GROUPS).toEqual(['email-service', 'video-processor']);
    // Admin access is a signed-in user's role, verified against users-api's keys: no token of its own.
    expect(config).not.toHaveProperty('CONSOLE_ADMIN_TOKEN');
    expect(config.AUTH_JWKS_URL).toBe('http://127.0.0.1:3000/.well-known/jwks.json');
    // The browser's way to users-api and the notifier; the console watches every app, itself included, by default.
    expect([config.CONSOLE_API_URL, config.CONSOLE_NOTIFIER_URL]).toEqual([
      'http://127.0.0.1:3000',
      'http://127.0.0.1:3004',
    ]);
    expect(loadConfig('console', consoleConfigSchema, {}).CONSOLE_APPS.map((app) => app.name)).toEqual(
      Object.keys(APP_PORTS),
    );

    const problems = problemsOf(() =>
      loadConfig('console', consoleConfigSchema, {
        CONSOLE_APPS: 'users-api=ftp://x',
        CONSOLE_GROUPS: 'a group',
        CONSOLE_REFRESH_MS: '10',
        CONSOLE_API_URL: 'javascript:alert(1)',
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^CONSOLE_APPS\.0\.url: must be an http/),
        expect.stringMatching(/^CONSOLE_GROUPS\.0: a consumer group name/),
        expect.stringMatching(/^CONSOLE_REFRESH_MS: /),
        expect.stringMatching(/^CONSOLE_API_URL: must be an http/),
      ]),
    );
  });

  it('users-api has no console settings, and allows the console to call it from a browser', () => {
    expect(Object.keys(usersApiConfigSchema.shape).filter((key) => key.startsWith('CONSOLE_'))).toEqual([]);
    const origins = (env: Record<string, string>) =>
      loadConfig('users-api', usersApiConfigSchema, env).USERS_API_ALLOWED_ORIGINS;
    expect(origins({})).toEqual([`http://127.0.0.1:${APP_PORTS.console}`, `http://localhost:${APP_PORTS.console}`]);
    expect(origins({ USERS_API_ALLOWED_ORIGINS: 'https://console.example.com/' })).toEqual([
      'https://console.example.com',
    ]);
  });

  it('the notifier takes * or a list of origins for its stream', () => {
    const origins = (value?: string) =>
      loadConfig(
        'notifier',
        APP_CONFIG_SCHEMAS.notifier,
        value === undefined ? {} : { NOTIFIER_ALLOWED_ORIGINS: value },
      ).NOTIFIER_ALLOWED_ORIGINS;
    expect(origins()).toEqual(['http://127.0.0.1:3005', 'http://localhost:3005']);
    expect(origins('*')).toEqual(['*']);
    expect(origins('http://127.0.0.1:3000/console, https://ops.example.com')).toEqual([
      'http://127.0.0.1:3000',
      'https://ops.example.com',
    ]);
    expect(problemsOf(() => origins('file:///etc'))).toHaveLength(1);
  });

  it('the notifier needs NOTIFIER_STREAM_SECRET with NODE_ENV=production, of at least 32 characters', () => {
    const load = (env: Record<string, string>) => loadConfig('notifier', APP_CONFIG_SCHEMAS.notifier, env);
    expect(load({}).NOTIFIER_STREAM_SECRET).toBeUndefined();
    expect(problemsOf(() => load({ NODE_ENV: 'production' }))).toEqual([
      expect.stringContaining('NOTIFIER_STREAM_SECRET'),
    ]);
    expect(problemsOf(() => load({ NOTIFIER_STREAM_SECRET: 'short' }))).toHaveLength(1);
    const secret = 'x'.repeat(32);
    expect(load({ NODE_ENV: 'production', NOTIFIER_STREAM_SECRET: secret }).NOTIFIER_STREAM_SECRET).toBe(secret);
  });
});
