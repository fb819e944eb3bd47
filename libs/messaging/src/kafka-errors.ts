/** What a failed kafkajs call says: the record itself was refused, the broker was not reached, or neither. */

export interface KafkaLikeError {
  name?: string;
  type?: string;
  /** Node's code of a socket or TLS error (ECONNREFUSED, SELF_SIGNED_CERT_IN_CHAIN). */
  code?: string;
  message?: string;
  retriable?: boolean;
  cause?: unknown;
  originalError?: unknown;
}

/** The error and the errors it wraps (kafkajs nests them in `cause` and `originalError`). */
export function errorChain(error: unknown): KafkaLikeError[] {
  const found: KafkaLikeError[] = [];
  let current: unknown = error;
  while (current && typeof current === 'object' && found.length < 10) {
    const e = current as KafkaLikeError;
    found.push(e);
    current = e.cause ?? e.originalError;
  }
  return found;
}

/**
 * Broker replies that refuse the record itself, whatever the state of the cluster: sending it again can never work.
 * Cluster-wide refusals (authentication, an unreachable broker) are not here: they say nothing about the row.
 */
const ROW_REJECTIONS = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'INVALID_TOPIC_EXCEPTION',
  'TOPIC_AUTHORIZATION_FAILED',
]);

export function isRecordRejected(error: unknown): boolean {
  return errorChain(error).some((e) => e.type !== undefined && ROW_REJECTIONS.has(e.type));
}

/**
 * Refusals of the record's bytes (its size, its encoding), whatever the state of the cluster: the same bytes can never
 * go, but a smaller form (compressed, cut) may. Authorization and unknown-topic answers are not here: they say
 * nothing about the bytes, and dropping a message for them would lose it.
 */
const BYTES_REFUSALS = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE']);

export function isRecordRefused(error: unknown): boolean {
  return errorChain(error).some((e) => e.type !== undefined && BYTES_REFUSALS.has(e.type));
}

/** The broker does not know the topic (deleted, or never created). */
export function isUnknownTopic(error: unknown): boolean {
  return errorChain(error).some((e) => e.type === 'UNKNOWN_TOPIC_OR_PARTITION');
}

/** The broker could not be reached or did not answer in time: nothing can be learned about single rows. */
const UNREACHABLE = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
]);

export function isBrokerUnreachable(error: unknown): boolean {
  return errorChain(error).some((e) => e.name !== undefined && UNREACHABLE.has(e.name));
}

/** The group is rebalancing (or moved on to a new generation): the member must rejoin before it goes on. */
const REBALANCING = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'NOT_COORDINATOR_FOR_GROUP',
  'NOT_COORDINATOR',
]);

export function isRebalancing(error: unknown): boolean {
  return errorChain(error).some((e) => e.type !== undefined && REBALANCING.has(e.type));
}

/**
 * Broker replies that blame the record that was sent, so that failing again and again on it (while other records go
 * through) says the record is at fault: these may count toward parking it. Includes the outright refusals above.
 */
const RECORD_FAULTS = new Set([
  ...ROW_REJECTIONS,
  'CORRUPT_MESSAGE',
  'INVALID_TIMESTAMP',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT',
]);

/**
 * Whether a failed send blames the record. Everything else — a partition without a leader, a leader that moved, a
 * partition the broker does not know (yet), too few in-sync replicas, a timeout, a lost connection, or an error that
 * names no Kafka reason — is an outage of part of the cluster: the record is sent again later, and the failure says
 * nothing against it. (kafkajs fails a whole topic's metadata when one of its partitions has no leader.)
 */
export function isRecordFault(error: unknown): boolean {
  return errorChain(error).some((e) => e.type !== undefined && RECORD_FAULTS.has(e.type));
}
