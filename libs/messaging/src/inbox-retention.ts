import type { LoggerService } from '@nestjs/common';
import type { Kafka } from 'kafkajs';
import { errorMessageOf } from './errors';
import type { InboxStore } from './inbox';
import { withKafkaRetries } from './topics';

/**
 * The inbox is what makes a replay harmless, so it must remember an event as long as Kafka may still hold it:
 * longer than the retention of every topic the group reads (plus one segment roll, since Kafka deletes whole
 * segments). A shorter setting fails the boot instead of resending emails on a replay months later. 0 hours: the
 * inbox keeps everything, nothing to check.
 */
export async function checkInboxRetention(kafka: Kafka, topics: string[], hours: number): Promise<void> {
  if (hours <= 0) return;
  const admin = kafka.admin();
  await admin.connect();
  try {
    // Topics created a moment ago may not be served yet (UNKNOWN_TOPIC_OR_PARTITION): retried like other start-up calls.
    const { resources } = await withKafkaRetries('topic retention check', () =>
      admin.describeConfigs({
        includeSynonyms: false,
        resources: topics.map((name) => ({ type: 2 /* TOPIC */, name, configNames: ['retention.ms', 'segment.ms'] })),
      }),
    );
    for (const resource of resources) {
      const value = (name: string) => Number(resource.configEntries.find((e) => e.configName === name)?.configValue);
      const retention = value('retention.ms');
      const kept = retention < 0 ? Infinity : retention + (value('segment.ms') || 0);
      if (hours * 3_600_000 <= kept) {
        const days = kept === Infinity ? 'forever' : `up to ${(kept / 86_400_000).toFixed(1)} days`;
        throw new Error(
          `INBOX_RETENTION_HOURS=${hours} is shorter than topic ${resource.resourceName} keeps messages (${days}: retention.ms + segment.ms); ` +
            `a replay would resend. Raise it above that, or set 0 to keep inbox records forever`,
        );
      }
    }
  } finally {
    await admin.disconnect();
  }
}

/** Prunes the group's inbox records past the retention now and hourly; returns the timer (clear it on close). */
export function startInboxPruning(
  inbox: InboxStore,
  consumerGroup: string,
  hours: number,
  log: LoggerService,
): NodeJS.Timeout | undefined {
  if (hours <= 0 || !inbox.prune) return undefined;
  const prune = () => {
    inbox.prune?.(consumerGroup, hours).then(
      (deleted) => {
        if (deleted > 0) log.log(`pruned ${deleted} inbox records older than ${hours} h`);
      },
      (error: unknown) => {
        log.warn(`inbox pruning failed: ${errorMessageOf(error)}`);
      },
    );
  };
  prune();
  const timer = setInterval(prune, 3_600_000);
  timer.unref();
  return timer;
}
