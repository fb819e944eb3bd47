import { partitionKey } from './partition-progress';
import { injectTraceContext, startPublishSpans } from './tracing';
import { Logger } from '@nestjs/common';
import { outsideLogContext } from '@app/telemetry';
import { CompressionTypes, ICustomPartitioner, Kafka, Message, Partitioners, Producer, TopicMessages } from 'kafkajs';
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
  const headers = envelopeHeaders(envelope);
  // The context of the work that caused the event: kept in an outbox row's headers until the relay sends it.
  injectTraceContext(headers);
  return { topic: topicOf(type), key: options.key, value: JSON.stringify(envelope), headers };
}

/** A typed event record, whose value and headers are always text. */
export type EventRecord = OutgoingRecord & { key: string; value: string; headers: Record<string, string> };

/**
 * kafkajs's default partitioner (murmur2 of the key, like the Java client, so every client in any language maps a
 * key to the same partition), except that a keyless record goes by the hash of its value rather than round-robin:
 * the same partition on every attempt of a send. Each choice is reported to `chosen`.
 */
export function stablePartitioner(chosen: (topic: string, partition: number) => void): ReturnType<ICustomPartitioner> {
  const partitioner = Partitioners.DefaultPartitioner();
  return (args) => {
    const { message } = args;
    const keyed =
      message.key == null && message.value != null ? { ...args, message: { ...message, key: message.value } } : args;
    const partition = partitioner(keyed);
    chosen(args.topic, partition);
    return partition;
  };
}

/**
 * Connects a kafkajs idempotent producer. Before it asks for its producer id, kafkajs loads the metadata of the topics
 * the producer knows: none yet on a new one, which kafkajs asks for as every topic in the cluster, and it fails the
 * whole answer when any partition has no leader. A new producer could then not start while any partition anywhere
 * lacks a leader. So a failed connect is tried once more after loading the metadata of just `topics` (a send of no
 * records, which sends no produce request); the id is then asked for with that metadata.
 */
async function connectProducer(producer: Producer, topics: readonly string[]): Promise<void> {
  try {
    await producer.connect();
  } catch (error) {
    if (topics.length === 0) throw error;
    await producer.sendBatch({ acks: -1, topicMessages: topics.map((topic) => ({ topic, messages: [] })) });
    await producer.connect();
  }
}

/**
 * The process's one idempotent producer (acks=all, one request in flight, so per-partition order survives
 * retries). Every send is awaited by its caller; records of one call go out in one request per broker.
 *
 * After any failed send the kafkajs producer is thrown away and the next send starts a new one, with a new
 * producer id. kafkajs winds its sequence numbers back when a request fails, even when the broker appended part of
 * it (a partition-level error in a multi-partition request, a response lost after the append). Reusing that state
 * makes the next send fail with OUT_OF_ORDER_SEQUENCE_NUMBER forever, or be acknowledged as a duplicate of what the
 * broker already holds without being written: a lost message. A new producer id has no history to collide with;
 * the price is that a batch re-sent after a failure may be written twice, which consumers skip by event id. A send
 * kafkajs reports done is checked to have an answer for every partition it wrote to (see sendNow).
 */
export class EventProducer {
  private readonly logger = new Logger(EventProducer.name);
  private producer: Producer;
  private connecting?: Promise<void>;
  private connected = false;
  private tail: Promise<void> = Promise.resolve();
  /** Producers started so far; more than one means earlier ones were discarded after a failed send. */
  generation = 1;
  private lastSend?: { ok: boolean; at: number; error?: string };
  /** The partitions the records of the send in progress went to (one send at a time). */
  private readonly targets = new Set<string>();

  constructor(private readonly kafka: Kafka) {
    this.producer = this.create();
  }

  private create(): Producer {
    const producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Each partition chosen is noted, so the send can check it was answered for every one of them.
      createPartitioner: () =>
        stablePartitioner((topic, partition) => this.targets.add(partitionKey(topic, partition))),
      // Short client-side retries: callers (the outbox relay, the consumer runner) own the long backoff.
      retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 4 },
    });
    producer.on(producer.events.DISCONNECT, () => {
      if (producer === this.producer) this.connected = false;
    });
    return producer;
  }

  /** `topics`: those about to be sent to (see `connectProducer`). */
  async connect(topics: readonly string[] = []): Promise<void> {
    if (this.connected) return;
    const producer = this.producer;
    // Not in the context of the message being handled: the sockets outlive it, and so would its ids on their lines.
    this.connecting ??= outsideLogContext(() => connectProducer(producer, topics))
      .then(() => {
        if (producer === this.producer) this.connected = true;
      })
      .finally(() => {
        this.connecting = undefined;
      });
    await this.connecting;
  }

  /**
   * Sends records in the given order; resolves only after the broker acknowledged all of them (acks=all).
   * `compress`: gzip the batch (a copy of a record another producer sent compressed may fit only so).
   */
  async send(records: readonly OutgoingRecord[], options: { compress?: boolean } = {}): Promise<void> {
    if (records.length === 0) return;
    const compression = options.compress ? CompressionTypes.GZIP : CompressionTypes.None;
    // One send at a time: concurrent sends on one idempotent kafkajs producer have lost messages (kafkajs#1005).
    const turn = this.tail.then(() => this.sendNow(records, compression));
    this.tail = turn.catch(() => undefined);
    await turn;
  }

  private async sendNow(untraced: readonly OutgoingRecord[], compression: CompressionTypes): Promise<void> {
    const { records, settle } = startPublishSpans(untraced);
    // One entry per topic, records kept in their relative order: per-key order only matters within a partition.
    const byTopic = new Map<string, Message[]>();
    for (const record of records) {
      const messages = byTopic.get(record.topic) ?? [];
      messages.push({ key: record.key, value: record.value, headers: record.headers });
      byTopic.set(record.topic, messages);
    }
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    try {
      await this.connect([...byTopic.keys()]);
      const producer = this.producer;
      this.targets.clear();
      const answers = await outsideLogContext(() => producer.sendBatch({ acks: -1, compression, topicMessages }));
      // kafkajs re-sends a failed request only to brokers that have not answered yet, against metadata refreshed
      // meanwhile: a partition whose leader moved to a broker that already answered is never sent, and the send
      // still resolves (kafkajs#1303). An acknowledgement must cover every partition written to.
      const answered = new Set(answers.map((answer) => partitionKey(answer.topicName, answer.partition)));
      const unanswered = [...this.targets].filter((target) => !answered.has(target));
      if (unanswered.length > 0) {
        throw new Error(`the send was acknowledged without an answer for ${unanswered.join(', ')}; sending again`);
      }
      this.lastSend = { ok: true, at: Date.now() };
      settle();
    } catch (error) {
      settle(error);
      this.lastSend = { ok: false, at: Date.now(), error: error instanceof Error ? error.message : String(error) };
      this.replace();
      throw error;
    }
  }

  /** Discards the current producer (its sequence numbers may no longer match the broker's) for a new one. */
  private replace(): void {
    const old = this.producer;
    this.producer = this.create();
    this.connected = false;
    this.connecting = undefined;
    this.generation += 1;
    this.logger.debug(`send failed; producer replaced (generation ${this.generation})`);
    void old.disconnect().catch(() => undefined);
  }

  /** For health: connected or not (it connects on the first send), and how the last send went. */
  status(): { connected: boolean; generation: number; lastSend?: { ok: boolean; at: string; error?: string } } {
    const last = this.lastSend;
    return {
      connected: this.connected,
      generation: this.generation,
      ...(last ? { lastSend: { ...last, at: new Date(last.at).toISOString() } } : {}),
    };
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
