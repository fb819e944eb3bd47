/** What every benchmark shares: the throw-away broker and database scripts/bench.sh prepares, and app settings. */
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/kafka_nest_bench';
export const KAFKA_BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:29292';

/** Environment for an app under measurement: quiet logs, any free port, no rate limit in the way. */
export const benchEnv = (overrides: Record<string, string>): Record<string, string> => ({
  DATABASE_URL,
  KAFKA_BROKERS,
  LOG_LEVEL: 'error',
  PORT: '0',
  RATE_LIMIT_PER_MINUTE: '1000000',
  ...overrides,
});
