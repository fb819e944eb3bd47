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
