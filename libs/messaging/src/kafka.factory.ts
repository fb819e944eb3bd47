import { readFileSync } from 'node:fs';
import { Logger } from '@nestjs/common';
import { Kafka, KafkaConfig as KafkaJsConfig, logLevel, LogEntry, SASLOptions } from 'kafkajs';
import type { KafkaConfig } from '@app/config';

// kafkajs reports every refused connection as an ERROR; during a broker outage that is expected and retried, so
// it is a warning here. Failures that matter surface as rejected calls, which the callers log.
const levelName: Record<number, 'error' | 'warn' | 'log' | 'debug'> = {
  [logLevel.ERROR]: 'warn',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'log',
  [logLevel.DEBUG]: 'debug',
};

/** Routes kafkajs logs through Nest's logger; INFO chatter (joins, rebalances) stays at debug. */
function logCreator() {
  return ({ namespace, level, log }: LogEntry) => {
    const { message, ...extra } = log;
    const logger = new Logger(`kafkajs:${namespace}`);
    const text = `${message}${Object.keys(extra).length > 2 ? ` ${JSON.stringify(extra)}` : ''}`;
    // Retries are bounded on purpose: callers re-send what was not acknowledged, and EventProducer starts a new
    // producer (new id, fresh sequence numbers) after any failed send, so a rewound sequence is never reused.
    // A broker's error answer to one request (a coordinator still loading on a fresh broker, a leader election) is
    // retried by kafkajs; if it stays, the call fails and its caller logs that. Each answer alone is detail.
    const expected =
      message.startsWith('Limiting retries for the idempotent producer') ||
      (namespace === 'Connection' && message.startsWith('Response '));
    const method = expected ? 'debug' : (levelName[level] ?? 'debug');
    if (method === 'log') logger.debug(text);
    else logger[method](text);
  };
}

function saslOf(config: KafkaConfig): SASLOptions | undefined {
  if (!config.KAFKA_SASL_MECHANISM) return undefined;
  return {
    mechanism: config.KAFKA_SASL_MECHANISM,
    username: config.KAFKA_SASL_USERNAME ?? '',
    password: config.KAFKA_SASL_PASSWORD ?? '',
  };
}

/** TLS options: the CA to trust (else the system's), and a client certificate where brokers ask for one. */
function sslOf(config: KafkaConfig): KafkaJsConfig['ssl'] {
  if (!config.KAFKA_SSL) return false;
  const read = (file: string | undefined) => (file ? readFileSync(file, 'utf8') : undefined);
  const ca = read(config.KAFKA_SSL_CA_FILE);
  const cert = read(config.KAFKA_SSL_CERT_FILE);
  const key = read(config.KAFKA_SSL_KEY_FILE);
  if (!ca && !cert) return true;
  return { ...(ca ? { ca: [ca] } : {}), ...(cert ? { cert, key } : {}) };
}

/** One kafkajs client per process, configured for brokers, TLS and SASL from the validated config. */
export function createKafka(
  config: KafkaConfig,
  clientId: string,
  options: { retries?: number; logLevel?: logLevel } = {},
): Kafka {
  const ssl = sslOf(config);
  return new Kafka({
    clientId: config.KAFKA_CLIENT_ID ?? clientId,
    brokers: config.KAFKA_BROKERS,
    ssl,
    sasl: saslOf(config),
    connectionTimeout: config.KAFKA_CONNECT_TIMEOUT_MS,
    requestTimeout: config.KAFKA_REQUEST_TIMEOUT_MS,
    logLevel: options.logLevel ?? logLevel.WARN,
    logCreator,
    retry: { initialRetryTime: 200, maxRetryTime: 5000, retries: options.retries ?? 8 },
  });
}

export type { Kafka };
/** The cluster admin client, for the few reads an app shows (lag, watermarks) beyond what the lib offers. */
export type { Admin as KafkaAdmin } from 'kafkajs';
