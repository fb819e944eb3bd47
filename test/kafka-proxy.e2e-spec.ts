import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { Kafka, logLevel, Producer } from 'kafkajs';
import { TEST_KAFKA_BROKERS } from './support/env';
import { FrameReader, KafkaProxy } from './support/kafka-proxy';
import { waitFor } from './support/wait';

/**
 * The fault proxy against the real broker: clients bootstrap from the proxy port (PORT+3), which the broker
 * advertises on its PROXIED listener, so every request of theirs goes through the proxy; assertions read the
 * broker directly on PORT.
 */
const [brokerHost, brokerPortText] = TEST_KAFKA_BROKERS.split(',')[0].split(':');
const brokerPort = Number(brokerPortText);
const PRODUCE = 0;
const API_VERSIONS = 18;

const direct = new Kafka({
  clientId: 'proxy-test-direct',
  brokers: [`${brokerHost}:${brokerPort}`],
  logLevel: logLevel.NOTHING,
});

/** A client that reaches the broker only through the proxy; no retries, so each fault surfaces as an error. */
function viaProxy(clientId: string, retries = 0): Kafka {
  return new Kafka({
    clientId,
    brokers: [`127.0.0.1:${brokerPort + 3}`],
    logLevel: logLevel.NOTHING,
    requestTimeout: 3000,
    retry: { retries },
  });
}

async function createTopic(): Promise<string> {
  const topic = `proxy-test-${randomUUID()}`;
  const admin = direct.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  return topic;
}

/** An ApiVersions v0 request frame: size, api key, api version, correlation id, client id; no body. */
function apiVersionsRequest(correlationId: number): Buffer {
  const clientId = Buffer.from('proxy-test-raw');
  const frame = Buffer.alloc(14 + clientId.length);
  frame.writeInt32BE(frame.length - 4, 0);
  frame.writeInt16BE(API_VERSIONS, 4);
  frame.writeInt16BE(0, 6);
  frame.writeInt32BE(correlationId, 8);
  frame.writeInt16BE(clientId.length, 12);
  clientId.copy(frame, 14);
  return frame;
}

/** Every message value of a topic up to its current end, read from the broker directly. */
async function readDirect(topic: string): Promise<string[]> {
  const admin = direct.admin();
  await admin.connect();
  const [end] = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  return consume(direct, topic, Number(end.high));
}

/** Consumes a topic from the beginning until `count` messages arrived; returns their values. */
async function consume(kafka: Kafka, topic: string, count: number): Promise<string[]> {
  const values: string[] = [];
  if (count === 0) return values;
  const consumer = kafka.consumer({ groupId: `proxy-test-${randomUUID()}`, maxWaitTimeInMs: 500 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message }) => {
        values.push(message.value?.toString() ?? '');
        return Promise.resolve();
      },
    });
    await waitFor(`${count} messages on ${topic}`, () => values.length >= count, { timeoutMs: 30_000 });
  } finally {
    await consumer.disconnect();
  }
  return values;
}

describe('KafkaProxy', () => {
  const proxy = new KafkaProxy({ listenPort: brokerPort + 3, targetPort: brokerPort + 2 });
  let producer: Producer | undefined;

  beforeAll(() => proxy.start());
  afterAll(() => proxy.stop());

  afterEach(async () => {
    proxy.heal();
    await producer?.disconnect();
    producer = undefined;
  });

  async function connectProducer(clientId: string): Promise<Producer> {
    producer = viaProxy(clientId).producer({ allowAutoTopicCreation: false });
    await producer.connect();
    return producer;
  }

  it('splits frames that span chunks and chunks that hold several frames', async () => {
    const [one, two, three] = [apiVersionsRequest(1), apiVersionsRequest(2), apiVersionsRequest(3)];
    const stream = Buffer.concat([one, two, three]);
    const reader = new FrameReader();
    const frames = [
      ...reader.push(stream.subarray(0, 2)), // not even a whole size prefix
      ...reader.push(stream.subarray(2, one.length + 5)),
      ...reader.push(stream.subarray(one.length + 5)), // the rest of two, and all of three
    ];
    expect(frames).toEqual([one, two, three]);

    // The same through the proxy to the broker, the requests written one byte at a time.
    const requests = proxy.stats.requests[API_VERSIONS] ?? 0;
    const socket = connect(brokerPort + 3, '127.0.0.1').setNoDelay(true);
    const responses = new FrameReader();
    const correlationIds: number[] = [];
    socket.on('data', (chunk: Buffer) => correlationIds.push(...responses.push(chunk).map((f) => f.readInt32BE(4))));
    try {
      for (const byte of Buffer.concat([one, two])) {
        await new Promise<void>((resolve, reject) => socket.write(Buffer.of(byte), (e) => (e ? reject(e) : resolve())));
      }
      await waitFor('both ApiVersions responses', () => correlationIds.length >= 2, { timeoutMs: 10_000 });
    } finally {
      socket.destroy();
    }
    expect(correlationIds).toEqual([1, 2]);
    expect(proxy.stats.requests[API_VERSIONS]).toBe(requests + 2);
  });

  it('passes produce and consume through and counts produce requests', async () => {
    const topic = await createTopic();
    const client = await connectProducer('proxy-test-pass');
    const before = proxy.stats.requests[PRODUCE] ?? 0;

    await client.send({ topic, acks: -1, messages: ['a', 'b', 'c'].map((value) => ({ value })) });

    expect(proxy.stats.requests[PRODUCE]).toBe(before + 1);
    // Group joins may meet a coordinator that is still loading on a fresh broker: let this consumer retry.
    expect((await consume(viaProxy('proxy-test-consume', 5), topic, 3)).sort()).toEqual(['a', 'b', 'c']);
    expect(proxy.stats.connections).toBeGreaterThan(0);
  });

  it('drops produce responses: the send times out, yet the broker wrote the message', async () => {
    const topic = await createTopic();
    const client = await connectProducer('proxy-test-drop');
    await client.send({ topic, acks: -1, messages: [{ value: 'before' }] });
    const dropped = proxy.stats.droppedResponses;

    proxy.dropResponses();
    const started = Date.now();
    await expect(client.send({ topic, acks: -1, messages: [{ value: 'unacknowledged' }] })).rejects.toThrow(
      /timed out/,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(proxy.stats.droppedResponses).toBe(dropped + 1);

    proxy.heal();
    await client.send({ topic, acks: -1, messages: [{ value: 'after' }] });
    expect(await readDirect(topic)).toEqual(['before', 'unacknowledged', 'after']);
  });

  it('cuts connections: the in-flight send fails, a later one succeeds over a new connection', async () => {
    const topic = await createTopic();
    const client = await connectProducer('proxy-test-cut');
    await client.send({ topic, acks: -1, messages: [{ value: 'first' }] });
    const connections = proxy.stats.connections;
    const produced = proxy.stats.requests[PRODUCE] ?? 0;

    // Hold the response back so the request is surely in flight when the connection is cut.
    proxy.delayResponses(60_000);
    const inFlight = client.send({ topic, acks: -1, messages: [{ value: 'in-flight' }] });
    inFlight.catch(() => undefined); // asserted below; keeps the rejection from counting as unhandled meanwhile
    await waitFor('the produce request to reach the proxy', () => (proxy.stats.requests[PRODUCE] ?? 0) > produced);
    const cutAt = Date.now();
    proxy.cutConnections();
    // kafkajs reconnects before it reports the failure: that reconnect must not meet the delay.
    proxy.heal();
    await expect(inFlight).rejects.toThrow(/Closed connection/);
    expect(Date.now() - cutAt).toBeLessThan(3000); // the cut failed it, not the request timeout

    await client.send({ topic, acks: -1, messages: [{ value: 'after' }] });
    expect(proxy.stats.connections).toBeGreaterThan(connections);
    // 'in-flight' reached the broker before the cut, so it is most likely written too; only the others are certain.
    expect(await readDirect(topic)).toEqual(expect.arrayContaining(['first', 'after']));
  });

  it('refuses connections while refusing, and accepts them again after', async () => {
    const topic = await createTopic();
    const client = await connectProducer('proxy-test-refuse');
    await client.send({ topic, acks: -1, messages: [{ value: 'first' }] });

    proxy.refuse(true);
    expect(proxy.openConnections).toBe(0);
    await expect(client.send({ topic, acks: -1, messages: [{ value: 'refused' }] })).rejects.toThrow();

    proxy.refuse(false);
    await client.send({ topic, acks: -1, messages: [{ value: 'after' }] });
    expect(await readDirect(topic)).toEqual(['first', 'after']);
  });
});
