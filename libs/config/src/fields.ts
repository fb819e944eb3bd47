import { z } from 'zod';

export { checkKafka } from './kafka-rules';

/*
 * Every setting is one field here (or, for one app's own settings, in apps.ts), and each carries its meaning in
 * `.describe()`: docs/configuration.md is generated from these (`npm run config:docs`), and a spec fails on a field
 * without a description or a reference that is out of date.
 */

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, { error: 'must be a whole number' })
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** A comma-separated list, each entry trimmed (empty ones dropped) and checked by `item`; at least one. */
const commaList = <T extends z.ZodType<unknown, string>>(item: T) =>
  z
    .string()
    .transform((text) =>
      text
        .split(',')
        .map((entry) => entry.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item).min(1, { error: 'give at least one entry' }));

export const env = { bool, int };

const brokerList = commaList(
  z.string().regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, { error: 'each broker must be host:port' }),
);

/** Kafka connection and topic settings shared by every app. */
export const kafkaEnv = {
  KAFKA_BROKERS: brokerList.default(['127.0.0.1:9092']).describe('The brokers to bootstrap from, `host:port` each.'),
  KAFKA_CLIENT_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .optional()
    .describe("The Kafka client id; unset: the app's name."),
  KAFKA_SSL: bool.default(false).describe('TLS to the brokers.'),
  KAFKA_SSL_CA_FILE: z
    .string()
    .optional()
    .describe(
      "PEM file of the CA(s) that signed the brokers' certificates; unset: the system's trusted CAs. Needs KAFKA_SSL.",
    ),
  KAFKA_SSL_CERT_FILE: z
    .string()
    .optional()
    .describe(
      'PEM client certificate, for brokers that authenticate clients by TLS (ssl.client.auth=required); goes with ' +
        'KAFKA_SSL_KEY_FILE and needs KAFKA_SSL.',
    ),
  KAFKA_SSL_KEY_FILE: z.string().optional().describe('PEM key of the client certificate KAFKA_SSL_CERT_FILE names.'),
  KAFKA_SASL_MECHANISM: z
    .enum(['plain', 'scram-sha-256', 'scram-sha-512'])
    .optional()
    .describe('SASL authentication to the brokers; needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD.'),
  KAFKA_SASL_USERNAME: z.string().optional().describe('SASL user name.'),
  KAFKA_SASL_PASSWORD: z.string().optional().describe('SASL password.'),
  KAFKA_TOPIC_PARTITIONS: int(1, 1000).default(3).describe('Partitions of the topics the system creates.'),
  KAFKA_REPLICATION_FACTOR: int(1, 10).default(1).describe('Replication factor of the topics the system creates.'),
  KAFKA_MIN_INSYNC_REPLICAS: int(1, 10)
    .optional()
    .describe(
      'min.insync.replicas of the topics the system creates (at most the replication factor); unset: the ' +
        "broker's. With 3 and 2, one broker may die with no acknowledged event lost.",
    ),
  KAFKA_CONNECT_TIMEOUT_MS: int(100, 120_000).default(3000).describe('Timeout of a connection to a broker.'),
  KAFKA_REQUEST_TIMEOUT_MS: int(1000, 300_000)
    .default(30_000)
    .describe('A request whose response does not come back in this time fails (and is retried, or the send fails).'),
  KAFKA_PROBE_INTERVAL_MS: int(250, 60_000)
    .default(2000)
    .describe(
      'How often health probes the cluster; readiness follows a lost or returned broker within about this long: ' +
        'two failed probes in a row (each bounded by this or KAFKA_CONNECT_TIMEOUT_MS, the longer) mark it ' +
        'unreachable, one answer reachable again.',
    ),
};

/** A PostgreSQL connection URL. */
export const postgresUrl = z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' });

export const databaseEnv = {
  DATABASE_URL: postgresUrl
    .default('postgres://postgres@127.0.0.1:5432/kafka_nest')
    .describe('The PostgreSQL database; created if missing.'),
  DATABASE_POOL_SIZE: int(1, 200).default(10).describe('Database connections per process.'),
  DATABASE_IDLE_TRANSACTION_TIMEOUT_MS: int(1000, 3_600_000)
    .default(60_000)
    .describe(
      'PostgreSQL ends a session left idle inside a transaction this long, releasing its row locks: a process ' +
        'frozen mid-transaction cannot hold up others for longer. The transactional inbox keeps its transaction ' +
        'alive while a handler waits (an SMTP send), so this bounds how long a frozen process holds an event, not ' +
        'how long a send takes.',
    ),
  DATABASE_STATEMENT_TIMEOUT_MS: int(1000, 3_600_000)
    .default(30_000)
    .describe(
      'PostgreSQL cancels a statement running longer than this (statement_timeout on every pooled session; ' +
        'migrations are not bound). It bounds statements only: a transaction left open while an SMTP send runs is ' +
        'bounded by DATABASE_IDLE_TRANSACTION_TIMEOUT_MS. A statement whose answer does not arrive at all (a ' +
        'silent network, a pooler that stopped forwarding) fails on the client a tenth later and its connection ' +
        'is dropped. Must exceed INBOX_LOCK_TIMEOUT_MS (a wait for a row lock is a statement).',
    ),
};

/** How long the client waits for any answer to a statement: the server's own timeout plus time for its reply. */
export function clientQueryTimeoutMs(statementTimeoutMs: number): number {
  return statementTimeoutMs + Math.max(1000, Math.round(statementTimeoutMs / 10));
}

/** A wait for a row lock must end as a lock timeout (55P03, retried as such), before the statement timeout. */
export function checkDatabase(
  cfg: { DATABASE_STATEMENT_TIMEOUT_MS: number; INBOX_LOCK_TIMEOUT_MS?: number },
  ctx: z.RefinementCtx,
): void {
  if (cfg.INBOX_LOCK_TIMEOUT_MS !== undefined && cfg.INBOX_LOCK_TIMEOUT_MS >= cfg.DATABASE_STATEMENT_TIMEOUT_MS) {
    ctx.addIssue({
      code: 'custom',
      path: ['INBOX_LOCK_TIMEOUT_MS'],
      message: `must be less than DATABASE_STATEMENT_TIMEOUT_MS (${cfg.DATABASE_STATEMENT_TIMEOUT_MS})`,
    });
  }
}

/** The consumer inbox: how long to wait for a key another consumer holds, and how long to keep records. */
export const inboxEnv = {
  INBOX_LOCK_TIMEOUT_MS: int(100, 600_000)
    .default(5000)
    .describe('Longest wait on an event another transaction holds; then the event goes to the retry topic.'),
  INBOX_RETENTION_HOURS: int(0, 87_600)
    .default(720)
    .describe(
      'Inbox records (and settled claims of a claim-mode inbox) older than this are pruned hourly; 0 keeps them ' +
        'forever. Must outlive the retention of every topic the group reads, or a replay resends (checked at boot).',
    ),
};

/**
 * Failure handling of a consumer group: how often and how long a retriable failure is retried before the message
 * goes to the dead-letter topic, and how long a graceful shutdown may take.
 */
export const consumerEnv = {
  CONSUMER_CONCURRENCY: int(1, 64).default(3).describe('Partitions handled in parallel per replica.'),
  CONSUMER_MAX_ATTEMPTS: int(1, 100)
    .default(6)
    .describe('Attempts in all (the first delivery included) before a message goes to the dead-letter topic.'),
  CONSUMER_RETRY_INITIAL_MS: int(1, 600_000)
    .default(500)
    .describe(
      'Backoff of the first retry. Exponential backoff with jitter: attempt n waits between half and all of ' +
        'min(CONSUMER_RETRY_MAX_MS, CONSUMER_RETRY_INITIAL_MS × CONSUMER_RETRY_MULTIPLIER^(n−1)).',
    ),
  CONSUMER_RETRY_MAX_MS: int(1, 3_600_000).default(30_000).describe('Longest backoff between two attempts.'),
  CONSUMER_RETRY_MULTIPLIER: int(1, 10).default(2).describe('Growth of the backoff from one attempt to the next.'),
  CONSUMER_RETRY_DEADLINE_MS: int(1000, 7 * 24 * 3_600_000)
    .default(3_600_000)
    .describe('No retry is scheduled later than this after the first failure.'),
  CONSUMER_SESSION_TIMEOUT_MS: int(6000, 300_000)
    .default(30_000)
    .describe('Group membership: a member not heard from this long is dropped and its partitions handed on.'),
  CONSUMER_HEARTBEAT_INTERVAL_MS: int(100, 60_000)
    .default(3000)
    .describe('How often a member heartbeats to its group, long-running handlers included.'),
  CONSUMER_STALL_TIMEOUT_MS: int(0, 3_600_000)
    .default(45_000)
    .describe(
      'A consumer that fetched nothing this long, with no message in hand, is replaced by a new one (0: never); ' +
        'so is one that got no batch this long for a partition it holds while messages wait there.',
    ),
  CONSUMER_CLAIM_REBALANCE_TIMEOUT_MS: int(3000, 300_000)
    .default(10_000)
    .describe(
      'How long a claim-mode group (video jobs) waits for its members to rejoin in a rebalance. Its claims protect ' +
        'a job that runs through a rebalance, so the group need not wait for the job: other partitions move on ' +
        "after this (kafkajs's default, 60 s, froze the whole group for up to a minute at each rebalance).",
    ),
  SHUTDOWN_TIMEOUT_MS: int(1000, 600_000)
    .default(25_000)
    .describe('SIGTERM deadline: drain in-flight work, commit, disconnect and exit 0; past it, exit 1.'),
};

/** The app's HTTP server: its own routes plus /health/live, /health/ready and /metrics. PORT 0 takes a free port. */
export function httpEnv(defaultPort: number) {
  return {
    PORT: int(0, 65535)
      .default(defaultPort)
      .describe("The HTTP port: the app's routes, health, readiness and metrics; 0 takes a free port."),
    HOST: z.string().min(1).default('127.0.0.1').describe('The address the HTTP server listens on.'),
    HTTP_REQUEST_TIMEOUT_MS: int(1000, 6 * 3_600_000)
      .default(1_800_000)
      .describe(
        'Longest a whole request may take, body included — a large upload over a slow link needs minutes; past ' +
          'it the answer is 408.',
      ),
    HTTP_BODY_TIMEOUT_MS: int(100, 600_000)
      .default(10_000)
      .describe(
        "A JSON request's body must arrive whole within this, or the answer is 408 (uploads have the limit above).",
      ),
    HTTP_HEADERS_TIMEOUT_MS: int(1000, 600_000)
      .default(20_000)
      .describe(
        "A request's headers must arrive within this (Node checks about every 30 s, so it bounds, not times, it).",
      ),
  };
}

/** Media storage shared by users-api and the video processors: a directory (a volume in compose). */
export const mediaEnv = {
  MEDIA_DIR: z
    .string()
    .min(1)
    .default('.run/media')
    .describe(
      'Media storage, uploads and renditions: the same directory (a shared volume) for users-api and the processors.',
    ),
};

const CONTAINERS = ['mp4', 'mov', 'webm', 'mkv', 'avi'] as const;

/** What users-api accepts as a video upload. */
export const videoUploadEnv = {
  VIDEO_MAX_BYTES: int(1, 10 * 1024 ** 3)
    .default(200 * 1024 ** 2)
    .describe('The largest upload; a larger one is 413.'),
  VIDEO_CONTAINERS: commaList(
    z
      .string()
      .transform((c) => c.toLowerCase())
      .pipe(z.enum(CONTAINERS, { error: `each must be one of ${CONTAINERS.join(', ')}` })),
  )
    .default(['mp4', 'mov', 'webm', 'mkv'])
    .describe('The containers accepted, recognised by their content.'),
};

/** How the video processor runs ffmpeg. */
export const ffmpegEnv = {
  FFMPEG_PATH: z.string().min(1).default('ffmpeg').describe('The ffmpeg program.'),
  FFPROBE_PATH: z.string().min(1).default('ffprobe').describe('The ffprobe program.'),
  FFMPEG_THREADS: int(0, 64)
    .default(1)
    .describe(
      'Threads per ffmpeg run (0: ffmpeg decides): one replica per core with 1 thread scales best on small machines.',
    ),
  FFMPEG_TIMEOUT_MS: int(1000, 6 * 3_600_000)
    .default(600_000)
    .describe('A single ffmpeg run (probe, thumbnail or preview) taking longer is killed and the job retried.'),
  THUMBNAIL_WIDTH: int(16, 3840).default(320).describe('Thumbnail width in pixels.'),
  PREVIEW_HEIGHT: int(16, 2160).default(360).describe('Preview height in pixels.'),
  VIDEO_LEASE_MS: int(1000, 3_600_000)
    .default(30_000)
    .describe(
      "The claim on a job: renewed every third of it while ffmpeg runs; a dead processor's job is taken over after it.",
    ),
  VIDEO_CONSUMER_GROUP: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .default('video-processor')
    .describe("The processors' consumer group (and its `.retry` / `.dlt` topics)."),
};

export const logEnv = {
  LOG_LEVEL: z.enum(['error', 'warn', 'log', 'debug', 'verbose']).default('log').describe('The lowest level logged.'),
  LOG_FORMAT: z
    .enum(['json', 'pretty'])
    .default('json')
    .describe(
      '`json`: one JSON object per line, for a log collector. `pretty`: one readable line per entry (`npm start`).',
    ),
};

const redisUrl = z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' });

/** Redis: the post cache users-api reads through and the cache-invalidator keeps correct. */
export const redisEnv = {
  REDIS_URL: redisUrl
    .default('redis://127.0.0.1:6379')
    .describe('Redis, for the post cache (`rediss://` for TLS; credentials in the URL).'),
  REDIS_COMMAND_TIMEOUT_MS: int(50, 60_000)
    .default(1000)
    .describe(
      'A command not answered in this time fails: a read falls back to the database, an invalidation is retried.',
    ),
  POST_CACHE_TTL_SECONDS: int(1, 7 * 86_400)
    .default(300)
    .describe(
      'How long a cached post lives without an invalidation (the bound on staleness should every safeguard fail); ' +
        'version floors live at least an hour.',
    ),
};

/** `*`, or a comma-separated list of web origins (a URL is cut down to its origin). */
const originList = commaList(
  z.union([z.literal('*'), z.url({ protocol: /^https?$/ }).transform((url) => new URL(url).origin)]),
);

/** `production` in the image: secrets an app would otherwise make at boot are required. */
const nodeEnv = z
  .string()
  .optional()
  .describe(
    '`production` makes AUTH_SIGNING_KEYS (users-api) and NOTIFIER_STREAM_SECRET (the notifier) required (the image ' +
      'sets it).',
  );

/** The notifier's Server-Sent Events stream. */
export const notifierEnv = {
  NOTIFIER_HEARTBEAT_MS: int(1000, 300_000)
    .default(15_000)
    .describe('A comment line this often keeps proxies from closing a quiet stream.'),
  NOTIFIER_CLIENT_QUEUE_MAX: int(1, 100_000)
    .default(1000)
    .describe(
      'Events waiting for one slow client; past it the client is told, and disconnected (it may resume by id).',
    ),
  NOTIFIER_RESUME_MAX_EVENTS: int(0, 1_000_000)
    .default(10_000)
    .describe(
      'How many events a resume (Last-Event-ID) may replay from the broker; further back, the client is told ' +
        '(`event: resync`).',
    ),
  NOTIFIER_MAX_CLIENTS: int(1, 1_000_000)
    .default(10_000)
    .describe('Open streams per replica; one more is refused with 503.'),
  NOTIFIER_ALLOWED_ORIGINS: originList
    .prefault('http://127.0.0.1:3005,http://localhost:3005')
    .describe(
      'Web pages on other origins allowed to read the streams (the console): a comma-separated list of origins, ' +
        'which may also sign in to the per-user stream (its cookie); `*` lets any page read the public stream ' +
        'only, never with credentials.',
    ),
  NOTIFIER_STREAM_SECRET: z
    .string()
    .min(32, { error: 'at least 32 characters' })
    .optional()
    .describe(
      "Keys the MAC that makes stream event ids (Last-Event-ID) and the per-user stream's cookie unforgeable; the " +
        'same on every replica, or a client cannot resume on another. Unset: made at boot (a warning says so; ids ' +
        'and cookies die with the process); required with NODE_ENV=production. A secret.',
    ),
};

/** users-api's HTTP API as other web pages may call it. */
export const usersApiHttpEnv = {
  USERS_API_ALLOWED_ORIGINS: originList
    .prefault('http://127.0.0.1:3005,http://localhost:3005')
    .describe(
      'Web pages on other origins allowed to call the API from a browser (the console, apps/console): `*`, or a ' +
        'comma-separated list of origins. The API takes no cookies, so this guards nothing a server could not do; ' +
        "it keeps other sites' pages from spending their visitors' rate limit here.",
    ),
};

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

/** `name=url` pairs, comma-separated: the apps whose /health/ready the console shows. */
const appUrls = commaList(
  z
    .string()
    .regex(/^[a-z0-9-]+=\S+$/, { error: 'each entry is name=http://host:port' })
    .transform((pair) => {
      const at = pair.indexOf('=');
      return { name: pair.slice(0, at), url: pair.slice(at + 1).replace(/\/+$/, '') };
    })
    .pipe(z.object({ name: z.string(), url: httpUrl })),
);

const groupList = commaList(z.string().regex(/^[A-Za-z0-9._-]+$/, { error: 'a consumer group name' }));

/**
 * The web console (apps/console): its page, the system view and the dead-letter tools (those need the admin role:
 * authVerifyEnv).
 */
export const consoleEnv = {
  CONSOLE_API_URL: httpUrl
    .default('http://127.0.0.1:3000')
    .describe(
      "users-api as the browser reaches it: the page calls its API (users-api must allow the console's origin).",
    ),
  CONSOLE_NOTIFIER_URL: httpUrl
    .default('http://127.0.0.1:3004')
    .describe('The notifier as the browser reaches it: the page reads its live stream.'),
  CONSOLE_MAIL_URL: httpUrl
    .optional()
    .describe("A mail catcher's web UI (MailDev in `npm start`), linked from the page when set."),
  CONSOLE_APPS: appUrls
    .prefault(
      'users-api=http://127.0.0.1:3000,email-service=http://127.0.0.1:3001,video-processor=http://127.0.0.1:3002,cache-invalidator=http://127.0.0.1:3003,notifier=http://127.0.0.1:3004,console=http://127.0.0.1:3005',
    )
    .describe('The apps whose readiness the page shows, as the console reaches them.'),
  CONSOLE_GROUPS: groupList
    .prefault('email-service,video-processor,cache-invalidator,users-api')
    .describe('The durable consumer groups whose lag, retry backlog and dead letters the page shows.'),
  CONSOLE_REFRESH_MS: int(1000, 60_000)
    .default(2000)
    .describe("How often the page's system view is refreshed (while a page is open)."),
  CONSOLE_ASSETS_DIR: z
    .string()
    .min(1)
    .default('dist/console/web')
    .describe('The compiled page (`npm run build` writes it).'),
};

/** Who issues access tokens and where their public keys are: every app that verifies a signed-in user. */
export const authVerifyEnv = {
  AUTH_ISSUER: z
    .string()
    .min(1)
    .default('kafka-nest')
    .describe('The `iss` of access tokens: users-api signs with it, every other app accepts only it.'),
  AUTH_JWKS_URL: httpUrl
    .default('http://127.0.0.1:3000/.well-known/jwks.json')
    .describe(
      "users-api's public keys (JWKS) as this app reaches it: access tokens are verified against them, without a " +
        'database call; an unknown key id fetches them again (at most every 30 s).',
    ),
};

/** A JWK Set of private P-256 keys, each with its `kid`: the first signs, all are published for verification. */
const signingKeys = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: 'must be a JWK Set in JSON: {"keys":[…]} (npm run auth:keys makes one)',
      });
      return z.NEVER;
    }
  })
  .pipe(
    z.object({
      keys: z
        .array(
          z
            .object({
              kty: z.literal('EC', { error: 'each key must be an EC key (kty "EC")' }),
              crv: z.literal('P-256', { error: 'each key must be on P-256 (ES256)' }),
              kid: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'each key needs a kid (letters, digits, ._-)' }),
              x: z.string(),
              y: z.string(),
              d: z.string({ error: 'each key must be a private key (with "d")' }),
            })
            .loose(),
        )
        .min(1, { error: 'give at least one key' })
        .refine((keys) => new Set(keys.map((k) => k.kid)).size === keys.length, { error: 'each kid only once' }),
    }),
  );

/** users-api's sign-in: the keys it signs access tokens with and how long tokens live. */
export const authIssueEnv = {
  AUTH_ISSUER: authVerifyEnv.AUTH_ISSUER,
  AUTH_SIGNING_KEYS: signingKeys
    .optional()
    .describe(
      'The private keys access tokens are signed with (ES256), as a JWK Set: the first key signs, every key is ' +
        'published at `/.well-known/jwks.json`. Rotate by putting a new key first and dropping the old one once the ' +
        'tokens it signed have expired. `npm run auth:keys` prints one. Unset: a key is made at boot and lives as ' +
        'long as the process (a warning says so); refused with NODE_ENV=production. A secret.',
    ),
  AUTH_ACCESS_TOKEN_TTL_SECONDS: int(30, 86_400)
    .default(900)
    .describe('How long an access token is valid; signing out ends the refresh token, not a token already issued.'),
  AUTH_REFRESH_TOKEN_TTL_SECONDS: int(300, 31_536_000)
    .default(2_592_000)
    .describe('How long a refresh token is valid (each refresh issues a new one and ends the old).'),
  AUTH_SIGN_IN_MAX_FAILURES: int(1, 1000)
    .default(5)
    .describe('Failed sign-ins of one account per window before its sign-ins answer 429.'),
  AUTH_SIGN_IN_MAX_CLIENT_FAILURES: int(1, 100_000)
    .default(20)
    .describe('Failed sign-ins from one client address per window (any accounts) before they answer 429.'),
  AUTH_SIGN_IN_WINDOW_SECONDS: int(10, 86_400)
    .default(900)
    .describe('The window failed sign-ins are counted in; a refused client may try again when it ends.'),
  NODE_ENV: nodeEnv,
};
