import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { TEST_KAFKA_BROKERS } from './env';

const run = promisify(execFile);
const script = join(__dirname, '..', '..', 'scripts', 'kafka.sh');
/** The scripts/kafka.sh instance scripts/test.sh started (TEST_KAFKA_NAME, `test` by default). */
const instance = process.env.TEST_KAFKA_NAME ?? 'test';

/** Stops the test broker (SIGTERM, clean shutdown) — only when scripts/test.sh manages it. */
export async function stopBroker(): Promise<void> {
  await run('bash', [script, 'stop', '--name', instance], { timeout: 60_000 });
}

export async function startBroker(): Promise<void> {
  await run('bash', [script, 'start', '--name', instance], { timeout: 120_000 });
}

/** A plain kafkajs client for assertions, independent of the apps' messaging lib (the test broker by default). */
export function testKafka(clientId = 'e2e-tests', brokers = TEST_KAFKA_BROKERS): Kafka {
  return new Kafka({ clientId, brokers: brokers.split(','), logLevel: logLevel.NOTHING });
}
