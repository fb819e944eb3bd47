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

export interface SystemOptions {
  /** Variables every app gets (OTEL_*, LOG_*). */
  shared?: Record<string, string>;
  /** Variables users-api gets on top. */
  usersApi?: Record<string, string>;
  /** Variables the console gets on top. */
  console?: Record<string, string>;
}

/**
 * All six apps as built processes, as deployed, with their own SMTP server, Redis, media directory and consumer
 * groups (starting at the end of their topics, so earlier suites' messages are not theirs).
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
  apps!: {
    api: ChildApp;
    mailer: ChildApp;
    processor: ChildApp;
    invalidator: ChildApp;
    notifier: ChildApp;
    console: ChildApp;
  };

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
    for (const app of ['users-api', 'email-service', 'video-processor', 'cache-invalidator', 'notifier', 'console']) {
      ports[app] = await freePort();
    }
    const urlOf = (app: string) => `http://127.0.0.1:${ports[app]}`;
    this.apiUrl = urlOf('users-api');
    this.notifierUrl = urlOf('notifier');
    this.consoleUrl = urlOf('console');
    const name = (app: string) => `${app}-${this.suffix}`;
    const port = (app: string) => ({ ...shared, PORT: String(ports[app]) });
    this.apps = {
      api: new ChildApp('users-api', name('users-api'), {
        ...port('users-api'),
        MEDIA_DIR: this.mediaDir,
        REDIS_URL: this.redis.url,
        // The console's page calls the API from its own origin.
        USERS_API_ALLOWED_ORIGINS: this.consoleUrl,
        ...options.usersApi,
      }),
      mailer: new ChildApp('email-service', name('email-service'), {
        ...port('email-service'),
        SMTP_URL: this.smtp.url,
        EMAIL_CONSUMER_GROUP: this.groups.email,
      }),
      processor: new ChildApp('video-processor', name('video-processor'), {
        ...port('video-processor'),
        MEDIA_DIR: this.mediaDir,
        VIDEO_CONSUMER_GROUP: this.groups.video,
      }),
      invalidator: new ChildApp('cache-invalidator', name('cache-invalidator'), {
        ...port('cache-invalidator'),
        REDIS_URL: this.redis.url,
        CACHE_INVALIDATOR_GROUP: this.groups.cache,
      }),
      notifier: new ChildApp('notifier', name('notifier'), port('notifier')),
      // The console watches this system: its apps, its groups, its API and notifier.
      console: new ChildApp('console', name('console'), {
        ...port('console'),
        CONSOLE_API_URL: this.apiUrl,
        CONSOLE_NOTIFIER_URL: this.notifierUrl,
        CONSOLE_APPS: Object.keys(ports)
          .map((app) => `${app}=${urlOf(app)}`)
          .join(','),
        CONSOLE_GROUPS: [this.groups.email, this.groups.video, this.groups.cache, 'users-api'].join(','),
        ...options.console,
      }),
    };
    // Six apps booting at once on a small machine take longer than one.
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
