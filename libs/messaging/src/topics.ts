import { Logger } from '@nestjs/common';
import type { Kafka } from 'kafkajs';

export interface TopicSettings {
  partitions: number;
  replicationFactor: number;
}

const logger = new Logger('Topics');

/**
 * Creates the topics that do not exist yet, with partitions and replication from config. Idempotent and safe
 * to run from every replica at boot; an existing topic is left as it is (its partition count is logged if it
 * differs, since shrinking is impossible and growing changes key placement).
 */
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
        })),
      });
      logger.log(`created topics ${missing.join(', ')} (${settings.partitions} partitions)`);
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
      }
    }
  } catch (error) {
    // Another replica created the topic between list and create.
    if ((error as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw error;
  } finally {
    await admin.disconnect();
  }
}
