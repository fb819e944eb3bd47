import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { APP_CONFIG_SCHEMAS, APP_PORTS, loadConfig } from '@app/config';
import { newSigningKeySet } from './support/signing-keys';

/** No Docker engine runs where the tests run, so the compose file is checked statically against the apps' configs. */
interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string | number | boolean>;
  ports?: string[];
  container_name?: string;
}

const root = join(__dirname, '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the same CommonJS helper the shell and Docker read
const appsOfNestCli = (require('../scripts/apps.js') as { apps: string[] }).apps;
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const apps = Object.keys(APP_CONFIG_SCHEMAS) as (keyof typeof APP_CONFIG_SCHEMAS)[];
/**
 * A service's environment as compose gives it: a required `${VAR:?…}` is what the operator exports (a signing key
 * set for AUTH_SIGNING_KEYS, a long random string for the other secrets).
 */
const envOf = (service: Service): Record<string, string> =>
  Object.fromEntries(
    Object.entries(service.environment ?? {}).map(([key, value]) => [
      key,
      /^\$\{AUTH_SIGNING_KEYS:\?/.test(String(value))
        ? newSigningKeySet()
        : /^\$\{[A-Z_]+:\?/.test(String(value))
          ? 'a-secret-the-operator-exported-long-enough'
          : String(value),
    ]),
  );

describe('docker-compose.yml', () => {
  it('runs Kafka in KRaft mode from the official Apache image, with topic auto-creation off', () => {
    const kafka = compose.services.kafka;
    expect(kafka.image).toMatch(/^apache\/kafka:\d+\.\d+\.\d+$/);
    expect(kafka.environment?.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(String(kafka.environment?.KAFKA_AUTO_CREATE_TOPICS_ENABLE)).toBe('false');
    expect(Object.keys(compose.services).some((name) => /zookeeper/i.test(name))).toBe(false);
  });

  it('has PostgreSQL, Redis and Mailpit', () => {
    expect(compose.services.postgres.image).toMatch(/^postgres:/);
    expect(compose.services.redis.image).toMatch(/^redis:/);
    expect(compose.services.mailpit.image).toMatch(/^axllent\/mailpit/);
  });

  it.each(apps)('%s is its own service, built from the Dockerfile, running its own entry point', (app) => {
    const service = compose.services[app];
    expect(service).toBeDefined();
    expect(service.build).toBe('.');
    expect(service.command).toEqual(['node', `dist/apps/${app}/apps/${app}/src/main.js`]);
  });

  it.each(apps)('%s sets only variables its config knows, with values its config accepts', (app) => {
    const env = envOf(compose.services[app]);
    const known = Object.keys(APP_CONFIG_SCHEMAS[app].shape);
    // OTEL_* are the OpenTelemetry SDK's own variables, read as its specification defines them.
    expect(Object.keys(env).filter((key) => !known.includes(key) && !key.startsWith('OTEL_'))).toEqual([]);
    expect(() => loadConfig(app, APP_CONFIG_SCHEMAS[app], env)).not.toThrow();
  });

  it("users-api signs with the operator's keys (the image runs with NODE_ENV=production); the others fetch them", () => {
    expect(String(compose.services['users-api'].environment?.AUTH_SIGNING_KEYS)).toMatch(/^\$\{AUTH_SIGNING_KEYS:\?/);
    const api = loadConfig('users-api', APP_CONFIG_SCHEMAS['users-api'], {
      ...envOf(compose.services['users-api']),
      NODE_ENV: 'production',
    });
    expect(api.AUTH_SIGNING_KEYS?.keys).toHaveLength(1);
    for (const app of ['notifier', 'console'] as const) {
      const config = loadConfig(app, APP_CONFIG_SCHEMAS[app], {
        ...envOf(compose.services[app]),
        NODE_ENV: 'production',
      });
      expect(config.AUTH_JWKS_URL).toBe('http://users-api:3000/.well-known/jwks.json');
    }
    expect(String(compose.services.notifier.environment?.NOTIFIER_STREAM_SECRET)).toMatch(
      /^\$\{NOTIFIER_STREAM_SECRET:\?/,
    );
  });

  it.each(apps)('%s exports its traces to the trace UI', (app) => {
    expect(envOf(compose.services[app]).OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://jaeger:4318');
  });

  it.each(apps)('%s is health-checked on /health/ready at the port its config listens on', (app) => {
    const service = compose.services[app] as Service & { healthcheck?: { test?: string[] } };
    expect(service.healthcheck?.test?.join(' ')).toContain('/health/ready');
    const config = loadConfig(app, APP_CONFIG_SCHEMAS[app], envOf(service));
    expect(config.PORT).toBe(APP_PORTS[app]);
    // Reachable from other containers (a Prometheus scraping /metrics), not only from inside its own.
    expect(config.HOST).toBe('0.0.0.0');
  });

  // users-api and the console are what a browser opens: each has its host port.
  it.each(apps.filter((app) => app !== 'users-api' && app !== 'console'))(
    '%s can be scaled: no fixed container name or host port',
    (app) => {
      const service = compose.services[app];
      expect(service.container_name).toBeUndefined();
      expect(service.ports ?? []).toEqual([]);
    },
  );

  it('the console watches every app where compose runs it, and its page reaches what the browser can', () => {
    const env = envOf(compose.services.console);
    const config = loadConfig('console', APP_CONFIG_SCHEMAS.console, env);
    expect(config.CONSOLE_APPS.map((app) => app.name).sort()).toEqual([...apps].sort());
    for (const { name, url } of config.CONSOLE_APPS) {
      // By service name from inside the network, except itself; each on the port its config listens on.
      const expected = name === 'console' ? 'localhost' : name;
      expect(new URL(url).hostname).toBe(expected);
      expect(Number(new URL(url).port)).toBe(APP_PORTS[name as keyof typeof APP_PORTS]);
    }
    // The browser reaches users-api and the notifier on the host's ports, and users-api allows the page's origin.
    const hostPort = (service: string) => compose.services[service].ports?.[0]?.split(':')[0];
    expect(new URL(config.CONSOLE_API_URL).port).toBe(hostPort('users-api'));
    const api = loadConfig('users-api', APP_CONFIG_SCHEMAS['users-api'], envOf(compose.services['users-api']));
    expect(api.USERS_API_ALLOWED_ORIGINS).toEqual([`http://localhost:${hostPort('console')}`]);
  });

  it('the apps are the same everywhere: nest-cli.json projects, configs and compose services', () => {
    const projects = appsOfNestCli;
    expect([...projects].sort()).toEqual([...apps].sort());
    const built = Object.values(compose.services).filter((service) => service.build === '.');
    expect(built.map((service) => service.command?.[1]).sort()).toEqual(
      projects.map((app) => `dist/apps/${app}/apps/${app}/src/main.js`).sort(),
    );
  });

  it('the Dockerfile builds every project of nest-cli.json, in an instruction rather than a comment', () => {
    // Instructions only: comments dropped, continuation lines joined.
    const instructions = readFileSync(join(root, 'Dockerfile'), 'utf8')
      .split('\n')
      .filter((line) => !line.trimStart().startsWith('#'))
      .join('\n')
      .replace(/\\\n/g, ' ')
      .split('\n');
    const buildStage = instructions.slice(
      0,
      instructions.findIndex((line, i) => i > 0 && /^FROM /.test(line)),
    );
    const copiesNestCli = buildStage.findIndex((line) => /^COPY .*nest-cli\.json/.test(line));
    const copiesList = buildStage.findIndex((line) => /^COPY scripts\/apps\.js/.test(line));
    const builds = buildStage.findIndex(
      (line) => /^RUN /.test(line) && line.includes('$(node scripts/apps.js)') && /nest build/.test(line),
    );
    expect(copiesNestCli).toBeGreaterThanOrEqual(0);
    expect(copiesList).toBeGreaterThanOrEqual(0);
    expect(builds).toBeGreaterThan(Math.max(copiesNestCli, copiesList));
  });
});
