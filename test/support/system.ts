import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_TOPICS } from '@app/contracts';
import { ensureTopics } from '@app/messaging';
import { testKafka } from './broker';
import { ChildApp } from './child-app';
import { startGroupAtEnd } from './kafka';
import { freePort, TestRedis } from './redis';
import { SmtpCatcher } from './smtp';

/** The apps, as the registry lists them (`npm run apps:sync` writes scripts/apps.json from apps/registry.ts). */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- the generated list the shell reads too
export const SYSTEM_APPS: string[] = (require('../../scripts/apps.json') as { name: string }[]).map((a) => a.name);

export interface SystemOptions {
  /** Variables every app gets (OTEL_*, LOG_*). */
  shared?: Record<string, string>;
  /** Variables users-api gets on top. */
  usersApi?: Record<string, string>;
  /** Variables the console gets on top. */
  console?: Record<string, string>;
}

/**
 * Every app of the registry as a built process, as deployed, with their own SMTP server, Redis, media directory and
 * consumer groups (starting at the end of their topics, so earlier suites' messages are not theirs).
 */
export class RunningSystem {
  readonly suffix = randomUUID().slice(0, 8);
  readonly smtp = new SmtpCatcher();
  readonly redis = new TestRedis();
  readonly groups = {
    email: `email-sys-${this.suffix}`,
    video: `video-sys-${this.suffix}`,
    cache: `cache-sys-${this.suffix}`,
  };
  readonly mediaDir = mkdtempSync(join(tmpdir(), 'system-media-'));
  apiUrl = '';
  notifierUrl = '';
  consoleUrl = '';
  /** Every app of the registry (scripts/apps.json), by name. */
  apps: Record<string, ChildApp> = {};

  async start(options: SystemOptions = {}): Promise<this> {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    await startGroupAtEnd(this.groups.email, 'emails');
    await startGroupAtEnd(this.groups.video, 'video-processing');
    await startGroupAtEnd(this.groups.cache, 'posts');
    await this.smtp.start();
    await this.redis.start();
    const shared = {
      // As the image and `npm start` run them: Node's notice about kafkajs's negative timer is not a log line.
      NODE_OPTIONS: '--disable-warning=TimeoutNegativeWarning',
      ...options.shared,
    };
    const ports: Record<string, number> = {};
    for (const app of SYSTEM_APPS) ports[app] = await freePort();
    const urlOf = (app: string) => `http://127.0.0.1:${ports[app]}`;
    this.apiUrl = urlOf('users-api');
    this.notifierUrl = urlOf('notifier');
    this.consoleUrl = urlOf('console');
    // What each app gets on top of its port and the shared variables; an app not named here runs on its defaults.
    const own: Record<string, Record<string, string>> = {
      'users-api': {
        MEDIA_DIR: this.mediaDir,
        REDIS_URL: this.redis.url,
        // The console's page calls the API from its own origin.
        USERS_API_ALLOWED_ORIGINS: this.consoleUrl,
        ...options.usersApi,
      },
      'email-service': { SMTP_URL: this.smtp.url, EMAIL_CONSUMER_GROUP: this.groups.email },
      'video-processor': { MEDIA_DIR: this.mediaDir, VIDEO_CONSUMER_GROUP: this.groups.video },
      'cache-invalidator': { REDIS_URL: this.redis.url, CACHE_INVALIDATOR_GROUP: this.groups.cache },
      // The notifier verifies tokens against this users-api, and the console's page reads its streams.
      notifier: {
        AUTH_JWKS_URL: `${this.apiUrl}/.well-known/jwks.json`,
        NOTIFIER_ALLOWED_ORIGINS: this.consoleUrl,
      },
      // The console watches this system: its apps, its groups, its API and notifier.
      console: {
        CONSOLE_API_URL: this.apiUrl,
        CONSOLE_NOTIFIER_URL: this.notifierUrl,
        CONSOLE_APPS: SYSTEM_APPS.map((app) => `${app}=${urlOf(app)}`).join(','),
        CONSOLE_GROUPS: [this.groups.email, this.groups.video, this.groups.cache, 'users-api'].join(','),
        // It verifies access tokens (the admin role opens its system view) against this users-api's keys.
        AUTH_JWKS_URL: `${this.apiUrl}/.well-known/jwks.json`,
        ...options.console,
      },
    };
    for (const app of SYSTEM_APPS) {
      this.apps[app] = new ChildApp(app, `${app}-${this.suffix}`, { ...shared, PORT: String(ports[app]), ...own[app] });
    }
    // All the apps booting at once on a small machine take longer than one.
    await Promise.all(Object.values(this.apps).map((app) => app.start('listening on', 90_000)));
    return this;
  }

  async stop(): Promise<void> {
    for (const app of Object.values(this.apps ?? {})) await app.stop('SIGKILL');
    await this.smtp.stop();
    await this.redis.stop();
    rmSync(this.mediaDir, { recursive: true, force: true });
  }
}
