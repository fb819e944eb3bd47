// The public surface of the messaging lib: everything Kafka an app, a script or a test may use. Anything not
// named here is the lib's own.

// Declaring consumers and handling events
export {
  EventConsumer,
  ConsumerDeclarationError,
  resolveConsumers,
  handledEventTypes,
} from './event-consumer.decorator';
export type { EventConsumerOptions, InboxMode, ResolvedConsumer } from './event-consumer.decorator';
export { HandleEvent } from './handle-event.decorator';
export { ConsumeContext } from './consume-context';
export type { StartPositions } from './start-positions';
export { PermanentError, RetriableError, UnavailableError, classifyError, errorMessageOf } from './errors';

// The consumer runtime (one server per @EventConsumer class) and what it needs from the app
export { KafkaEventServer } from './kafka-event.server';
export type {
  ConsumerObserver,
  ConsumerStats,
  ConsumerStatus,
  GroupKind,
  KafkaEventServerOptions,
  Membership,
  MessageOutcome,
} from './kafka-event.server';
export { NoInbox } from './inbox';
export type { InboxKey, InboxOutcome, InboxStore } from './inbox';
export { retryPolicyOf } from './retry-policy';
export type { RetryPolicy } from './retry-policy';

// Producing
export { EventProducer, toRecord } from './producer';
export type { EventRecord, OutgoingRecord, PublishOptions } from './producer';

// Client, module, topics and the broker's state
export { createKafka } from './kafka.factory';
export type { Kafka, KafkaAdmin } from './kafka.factory';
export { KAFKA, MessagingModule, ensureSystemTopics } from './messaging.module';
export { ensureTopics, topicExists, topicSettingsOf } from './topics';
export type { TopicSettings } from './topics';
export { preflightKafka } from './kafka-preflight';
export { KafkaMonitor, withDeadline } from './kafka-monitor';
export type { BrokerStatus, PartitionLag } from './kafka-monitor';
export { isBrokerUnreachable, isRecordFault, isRecordRejected, isUnknownTopic } from './kafka-errors';
export { TopicHistory } from './topic-history';
export type { HistoryMessage, PartitionBounds, Positions } from './topic-history';
export { timerDelay } from './backoff';
export { withSpan } from './tracing';

// Retry and dead-letter topics
export { FailureHeaders, deadLetterTopicOf, failureHeaders, retryTopicOf, safeErrorMessage } from './failure-headers';
export type { DeadLetterReason, MessageOrigin } from './failure-headers';
export { DeadLetters, UnknownPartitionError, formatThrough, lastOffsets, parseThrough } from './dead-letters';
export type { DeadLetter, DeadLetterFilter } from './dead-letters';
