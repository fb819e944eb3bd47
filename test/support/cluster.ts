import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { Kafka } from 'kafkajs';
import { testKafka } from './broker';
import { TEST_DATABASE_URL } from './env';
import { waitFor } from './wait';

const run = promisify(execFile);
const script = join(__dirname, '..', '..', 'scripts', 'kafka.sh');

/**
 * A throw-away Kafka instance of its own (scripts/kafka.sh --name NAME): a replicated cluster of `nodes` KRaft nodes,
 * or a single secured broker. Nodes are killed (SIGKILL) and started again as a crash and a reboot would.
 */
export class KafkaInstance {
  constructor(
    readonly name: string,
    readonly port: number,
    readonly nodes: number,
    private readonly extra: string[] = [],
    private readonly env: Record<string, string> = {},
  ) {}

  /** The client port of each node, as KAFKA_BROKERS lists them. */
  get brokers(): string {
    return Array.from({ length: this.nodes }, (_, i) => `127.0.0.1:${this.port + 10 * i}`).join(',');
  }

  private async script(...args: string[]): Promise<void> {
    await run('bash', [script, ...args, '--name', this.name], {
      timeout: 150_000,
      env: { ...process.env, ...this.env },
    });
  }

  /** A fresh instance: data of an earlier run is wiped. */
  async start(): Promise<void> {
    await this.script('reset');
    await this.script('start', '--port', String(this.port), '--nodes', String(this.nodes), ...this.extra);
  }

  /** SIGKILL: the node dies with no controlled shutdown, as in a crash. */
  async kill(node: number): Promise<void> {
    await this.script('kill', '--node', String(node));
  }

  async startNode(node: number): Promise<void> {
    await this.script('start', '--node', String(node));
  }

  /** Kills every node; data and logs stay under .run/kafka-NAME for a post-mortem until the next start wipes them. */
  async destroy(): Promise<void> {
    await this.script('kill');
  }

  kafka(clientId = 'e2e-cluster'): Kafka {
    return testKafka(clientId, this.brokers);
  }

  /** The node id leading a partition (node ids are 1..nodes, as the script numbers them). */
  async leaderOf(topic: string, partition: number): Promise<number> {
    const admin = this.kafka().admin();
    await admin.connect();
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      return metadata.topics[0].partitions.find((p) => p.partitionId === partition)!.leader;
    } finally {
      await admin.disconnect();
    }
  }

  /** Waits until every partition of these topics has a leader and all `nodes` replicas in sync. */
  async waitForFullIsr(topics: string[], timeoutMs = 90_000): Promise<void> {
    await waitFor(
      `every replica of ${topics.join(', ')} back in sync`,
      async () => {
        const admin = this.kafka().admin();
        await admin.connect();
        try {
          const metadata = await admin.fetchTopicMetadata({ topics });
          return metadata.topics.every((t) =>
            t.partitions.every((p) => p.leader >= 0 && p.isr.length === this.nodes && p.replicas.length === this.nodes),
          );
        } finally {
          await admin.disconnect();
        }
      },
      { timeoutMs, intervalMs: 500 },
    );
  }
}

/** A database of the suite's own (dropped first), so another suite's outbox rows never reach its broker. */
export async function freshDatabase(name: string): Promise<string> {
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = '/postgres';
  const admin = new Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  url.pathname = `/${name}`;
  return url.toString();
}
