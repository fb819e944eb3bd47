import { connect as netConnect, isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { KafkaConfig } from '@app/config';
import { logLevel } from 'kafkajs';
import { createKafka } from './kafka.factory';
import { errorMessageOf } from './errors';
import { errorChain } from './kafka-errors';

/**
 * The Kafka settings cannot work: wrong credentials, TLS against a plaintext listener or the other way round, a
 * certificate the client does not trust. Retrying changes nothing, so the app stops at boot with this message
 * instead of retrying (and logging) forever.
 */
export class KafkaMisconfiguredError extends Error {
  override readonly name = 'KafkaMisconfiguredError';
}

/** Node's codes for a certificate the client does not accept. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function hostAndPort(broker: string): { host: string; port: number } {
  const at = broker.lastIndexOf(':');
  return { host: broker.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(broker.slice(at + 1)) };
}

/** Whether host:port completes a TLS handshake (any certificate): positive proof of a TLS listener. */
function completesTlsHandshake(broker: string, timeoutMs: number): Promise<boolean> {
  const { host, port } = hostAndPort(broker);
  return new Promise((resolve) => {
    const socket = tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), rejectUnauthorized: false });
    const done = (result: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Whether host:port answers a plaintext Kafka ApiVersions request with a Kafka response (its correlation id): positive
 * proof of a plaintext listener. A broker that is restarting, slow or resetting connections proves nothing either way.
 */
function answersPlainKafka(broker: string, timeoutMs: number): Promise<boolean> {
  const { host, port } = hostAndPort(broker);
  const clientId = Buffer.from('preflight');
  // Request header v1 (api key 18 ApiVersions, version 0, correlation id 7, client id); the v0 body is empty.
  const header = Buffer.alloc(10 + clientId.length);
  header.writeInt16BE(18, 0);
  header.writeInt16BE(0, 2);
  header.writeInt32BE(7, 4);
  header.writeInt16BE(clientId.length, 8);
  clientId.copy(header, 10);
  const size = Buffer.alloc(4);
  size.writeInt32BE(header.length, 0);
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    const socket = netConnect({ host, port });
    const done = (result: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => socket.write(Buffer.concat([size, header])));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 8) done(received.readInt32BE(4) === 7);
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}

/**
 * What is wrong with the settings, if the failure says so; undefined for a failure that may pass (a broker that is
 * down, slow or restarting), which the callers' own retries handle.
 */
export async function kafkaMisconfiguration(error: unknown, config: KafkaConfig): Promise<string | undefined> {
  const errors = errorChain(error);
  const brokers = config.KAFKA_BROKERS.join(',');
  const message = errorMessageOf(error);
  if (errors.some((e) => e.name === 'KafkaJSSASLAuthenticationError')) {
    return (
      `Kafka at ${brokers} refused the credentials of user ${config.KAFKA_SASL_USERNAME} ` +
      `(SASL ${config.KAFKA_SASL_MECHANISM}): check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM (${message})`
    );
  }
  const tlsCode = errors.map((e) => e.code).find((code) => code !== undefined && UNTRUSTED.has(code));
  if (tlsCode) {
    return tlsCode === 'ERR_TLS_CERT_ALTNAME_INVALID'
      ? `the TLS certificate of Kafka at ${brokers} does not name the host connected to (${message}): list the brokers by the names in their certificates in KAFKA_BROKERS`
      : `the TLS certificate of Kafka at ${brokers} is not trusted (${tlsCode}): set KAFKA_SSL_CA_FILE to the CA that signed it`;
  }
  const connectionFailed = errors.some((e) =>
    ['KafkaJSConnectionClosedError', 'KafkaJSConnectionError'].includes(e.name ?? ''),
  );
  if (connectionFailed) {
    // A TLS listener closes a connection that opens with a plaintext Kafka request, and a plaintext one drops a TLS
    // handshake. Only positive proof counts: a completed handshake, or a Kafka answer in plaintext.
    for (const broker of config.KAFKA_BROKERS) {
      if (!config.KAFKA_SSL && (await completesTlsHandshake(broker, config.KAFKA_CONNECT_TIMEOUT_MS))) {
        return `Kafka at ${broker} speaks TLS and this client does not: set KAFKA_SSL=true (and KAFKA_SSL_CA_FILE for a private CA)`;
      }
      if (config.KAFKA_SSL && (await answersPlainKafka(broker, config.KAFKA_CONNECT_TIMEOUT_MS))) {
        return `Kafka at ${broker} does not speak TLS (${message}): use the brokers' TLS listener, or set KAFKA_SSL=false for a plaintext one`;
      }
    }
  }
  if (errors.some((e) => /UNSUPPORTED_SASL_MECHANISM|ILLEGAL_SASL_STATE/.test(`${e.name} ${e.message}`))) {
    return `Kafka at ${brokers} does not accept SASL ${config.KAFKA_SASL_MECHANISM} on this listener (${message}): check KAFKA_SASL_MECHANISM and that the listener is SASL_SSL or SASL_PLAINTEXT`;
  }
  return undefined;
}

/**
 * One connection attempt at boot, before anything else touches Kafka: settings that can never work stop the boot
 * with a message naming the setting; a broker that is merely down lets the boot go on (the app's consumers and relay
 * retry, and readiness says Kafka is unreachable).
 */
export async function preflightKafka(config: KafkaConfig, clientId: string): Promise<void> {
  // Its own client: one attempt per broker, no retries, and quiet (what it finds is said once, below).
  const kafka = createKafka(config, clientId, { retries: 0, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.describeCluster();
  } catch (error) {
    const problem = await kafkaMisconfiguration(error, config);
    if (problem) throw new KafkaMisconfiguredError(problem);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
