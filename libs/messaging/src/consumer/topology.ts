import type { Admin, Kafka } from 'kafkajs';
import { errorMessageOf } from '../errors';
import { checkInboxRetention } from '../inbox-retention';
import { ensureTopics, TopicSettings } from '../topics';

export interface GroupTopics {
  /** What the group subscribes to: the handled events' topics, and (durable groups) its retry topic. */
  subscribed: string[];
  /** Inbox retention to prune by: 0 when the inbox keeps everything or cannot prune. */
  retentionHours: number;
}

/**
 * Creates the topics a group reads and writes (never by auto-creation) and checks the inbox remembers longer than
 * they keep messages. Durable groups: the sources, the retry and the dead-letter topic. Per-instance groups (live
 * fan-out): the sources only — nothing is created on the broker but the group itself.
 */
export async function prepareGroupTopics(
  kafka: Kafka,
  group: { perInstance: boolean; sources: string[]; retryTopic: string; deadLetterTopic: string },
  settings: { topics: TopicSettings; inboxRetentionHours: number },
): Promise<GroupTopics> {
  const subscribed = group.perInstance ? group.sources : [...group.sources, group.retryTopic];
  const created = group.perInstance ? subscribed : [...subscribed, group.deadLetterTopic];
  await ensureTopics(kafka, created, settings.topics);
  await checkInboxRetention(kafka, created, settings.inboxRetentionHours);
  return { subscribed, retentionHours: settings.inboxRetentionHours };
}

/** An app with no event handlers: proves the broker answers, then keeps checking it every 30 s. */
export async function startIdleCheck(
  kafka: Kafka,
  log: { warn(message: string): void },
): Promise<{ admin: Admin; timer: NodeJS.Timeout }> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.describeCluster();
  const timer = setInterval(() => {
    admin.describeCluster().catch((error: unknown) => {
      log.warn(`broker check failed: ${errorMessageOf(error)}`);
    });
  }, 30_000);
  return { admin, timer };
}
