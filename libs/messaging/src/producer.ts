import { Logger } from '@nestjs/common';
import { CompressionTypes, Kafka, Message, Partitioners, Producer, TopicMessages } from 'kafkajs';
import {
  CONTENT_TYPE_CLOUDEVENTS,
  createEnvelope,
  Envelope,
  EventType,
  PayloadOf,
  topicOf,
  validatePayload,
} from '@app/contracts';

/** A record ready for Kafka: topic, key (the aggregate id, for per-key order), serialized value, headers. */
export interface OutgoingRecord {
  topic: string;
  key: string | null;
  /** Bytes as they are: a dead letter keeps the exact value that failed, even when it is not JSON. */
  value: string | Buffer | null;
  headers?: Record<string, string | Buffer>;
}

export interface PublishOptions {
  key: string;
  source: string;
  correlationId?: string;
  subject?: string;
}

/** Headers that let tools filter and route without parsing the value. */
export function envelopeHeaders(envelope: Envelope): Record<string, string> {
  return {
    'content-type': CONTENT_TYPE_CLOUDEVENTS,
    ce_id: envelope.id,
    ce_type: envelope.type,
    ce_source: envelope.source,
    ce_correlationid: envelope.correlationid,
  };
}

/** Builds the record for a typed event: the payload is validated here, so a wrong shape never leaves the process. */
export function toRecord<T extends EventType>(type: T, data: PayloadOf<T>, options: PublishOptions): EventRecord {
  const envelope = createEnvelope({
    type,
    source: options.source,
    data: validatePayload(type, data),
    correlationId: options.correlationId,
    subject: options.subject,
  });
  return {
    topic: topicOf(type),
    key: options.key,
    value: JSON.stringify(envelope),
    headers: envelopeHeaders(envelope),
  };
}

/** A typed event record, whose value and headers are always text. */
export type EventRecord = OutgoingRecord & { key: string; value: string; headers: Record<string, string> };

/**
 * The process's one idempotent producer (acks=all, one request in flight, so per-partition order survives
 * retries). Every send is awaited by its caller; records of one call go out in one request per broker.
 */
export class EventProducer {
  private readonly logger = new Logger(EventProducer.name);
  private readonly producer: Producer;
  private connecting?: Promise<void>;
  private connected = false;
  private tail: Promise<void> = Promise.resolve();

  constructor(kafka: Kafka) {
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // murmur2 like the Java client, so every client in any language maps a key to the same partition.
      createPartitioner: Partitioners.DefaultPartitioner,
      // Short client-side retries: callers (the outbox relay) own the long backoff.
      retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 4 },
    });
    this.producer.on(this.producer.events.DISCONNECT, () => {
      this.connected = false;
    });
  }

  async connect(): Promise<void> {
    if (this.connected) return;
    this.connecting ??= this.producer
      .connect()
      .then(() => {
        this.connected = true;
      })
      .finally(() => {
        this.connecting = undefined;
      });
    await this.connecting;
  }

  /** Sends records in the given order; resolves only after the broker acknowledged all of them (acks=all). */
  async send(records: readonly OutgoingRecord[]): Promise<void> {
    if (records.length === 0) return;
    // One send at a time: concurrent sends on one idempotent kafkajs producer have lost messages (kafkajs#1005).
    const turn = this.tail.then(() => this.sendNow(records));
    this.tail = turn.catch(() => undefined);
    await turn;
  }

  private async sendNow(records: readonly OutgoingRecord[]): Promise<void> {
    await this.connect();
    // One entry per topic, records kept in their relative order: per-key order only matters within a partition.
    const byTopic = new Map<string, Message[]>();
    for (const record of records) {
      const messages = byTopic.get(record.topic) ?? [];
      messages.push({ key: record.key, value: record.value, headers: record.headers });
      byTopic.set(record.topic, messages);
    }
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    await this.producer.sendBatch({ acks: -1, compression: CompressionTypes.None, topicMessages });
  }

  /** Publishes one typed event directly (no outbox): for producers whose source of truth is the event itself. */
  async publish<T extends EventType>(type: T, data: PayloadOf<T>, options: PublishOptions): Promise<string> {
    const record = toRecord(type, data, options);
    await this.send([record]);
    return record.headers.ce_id;
  }

  async disconnect(): Promise<void> {
    await this.tail;
    try {
      await this.producer.disconnect();
    } catch (error) {
      this.logger.warn(`producer disconnect failed: ${(error as Error).message}`);
    }
    this.connected = false;
  }
}
