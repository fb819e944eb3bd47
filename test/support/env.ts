/** Settings every e2e suite shares; scripts/test.sh starts the broker and exports KAFKA_BROKERS. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/kafka_nest_test';
export const TEST_KAFKA_BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:29092';

/** Environment for an app under test: the shared test infrastructure plus per-test overrides. */
export function appEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    KAFKA_BROKERS: TEST_KAFKA_BROKERS,
    DATABASE_URL: TEST_DATABASE_URL,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
    PORT: '0',
    RATE_LIMIT_PER_MINUTE: '100000',
    CONSUMER_RETRY_INITIAL_MS: '200',
    CONSUMER_RETRY_MAX_MS: '2000',
    OUTBOX_MAX_BACKOFF_MS: '1000',
    // Shared by every notifier replica under test, as in production: an id one gives out, another accepts.
    NOTIFIER_STREAM_SECRET: 'e2e-notifier-stream-secret-0123456789',
    ...overrides,
  };
}
