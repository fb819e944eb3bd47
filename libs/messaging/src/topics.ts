import { Logger } from '@nestjs/common';
import type { Kafka } from 'kafkajs';

export interface TopicSettings {
  partitions: number;
  replicationFactor: number;
  /**
   * Replicas that must hold a record before an acks=all write is acknowledged (the topic's min.insync.replicas);
   * unset leaves the broker's default. With replication factor 3 and 2 here, one broker may be lost with no
   * acknowledged record lost, and a second one stops writes rather than risk it.
   */
  minInsyncReplicas?: number;
}

/** The topic settings of the validated config. */
export function topicSettingsOf(config: {
  KAFKA_TOPIC_PARTITIONS: number;
  KAFKA_REPLICATION_FACTOR: number;
  KAFKA_MIN_INSYNC_REPLICAS?: number;
}): TopicSettings {
  return {
    partitions: config.KAFKA_TOPIC_PARTITIONS,
    replicationFactor: config.KAFKA_REPLICATION_FACTOR,
    minInsyncReplicas: config.KAFKA_MIN_INSYNC_REPLICAS,
  };
}

const logger = new Logger('Topics');

/**
 * Runs a start-up call again while it fails with a retriable Kafka error (up to about 10 s). Apps booting together
 * create the same topics at once, and a topic can be listed before its metadata and leaders are served.
 */
export async function withKafkaRetries<T>(what: string, call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if ((error as { retriable?: boolean }).retriable !== true || attempt >= 6) throw error;
      logger.debug(`${what} failed (${(error as Error).message}); again in ${attempt * 500} ms`);
      await new Promise((resolve) => setTimeout(resolve, attempt * 500));
    }
  }
}

/**
 * Creates the topics that do not exist yet, with partitions, replication and min.insync.replicas from config.
 * Idempotent and safe to run from every replica at boot; an existing topic is left as it is (a partition count or
 * replication factor that differs from config is logged: shrinking is impossible, growing changes key placement,
 * and reassigning replicas is an operator's move).
 */
export async function ensureTopics(kafka: Kafka, topics: readonly string[], settings: TopicSettings): Promise<void> {
  await withKafkaRetries('topic check', () => ensureTopicsOnce(kafka, topics, settings));
}

async function ensureTopicsOnce(kafka: Kafka, topics: readonly string[], settings: TopicSettings): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = [...new Set(topics)].filter((t) => !existing.has(t));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({
          topic,
          numPartitions: settings.partitions,
          replicationFactor: settings.replicationFactor,
          configEntries:
            settings.minInsyncReplicas === undefined
              ? []
              : [{ name: 'min.insync.replicas', value: String(settings.minInsyncReplicas) }],
        })),
      });
      logger.log(
        `created topics ${missing.join(', ')} (${settings.partitions} partitions, replication factor ` +
          `${settings.replicationFactor}${settings.minInsyncReplicas ? `, min.insync.replicas ${settings.minInsyncReplicas}` : ''})`,
      );
    }
    const present = [...new Set(topics)].filter((t) => existing.has(t));
    if (present.length > 0) {
      const metadata = await admin.fetchTopicMetadata({ topics: present });
      for (const topic of metadata.topics) {
        if (topic.partitions.length !== settings.partitions) {
          logger.warn(
            `topic ${topic.name} has ${topic.partitions.length} partitions, config says ${settings.partitions}`,
          );
        }
        const replicas = Math.min(...topic.partitions.map((p) => p.replicas.length));
        if (topic.partitions.length > 0 && replicas !== settings.replicationFactor) {
          logger.warn(
            `topic ${topic.name} has ${replicas} replicas per partition, config says ${settings.replicationFactor}`,
          );
        }
      }
    }
  } catch (error) {
    // Another replica created the topic between list and create.
    if ((error as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw error;
  } finally {
    await admin.disconnect();
  }
}

/**
 * Whether the cluster has the topic, from one metadata answer for all topics (one try, no retries). Throws when the
 * cluster gives no clean answer: kafkajs fails the whole answer when any partition has no leader.
 */
export async function topicExists(kafka: Kafka, topic: string): Promise<boolean> {
  const admin = kafka.admin({ retry: { retries: 0 } });
  await admin.connect();
  try {
    return (await admin.listTopics()).includes(topic);
  } finally {
    await admin.disconnect();
  }
}
