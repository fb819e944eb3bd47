/**
 * Every Kafka topic of the system. Do not change these values without a migration plan:
 * producers, consumer groups, retry and dead-letter topics and offsets are keyed by them.
 */
export const Topics = {
  Users: 'users',
  Emails: 'emails',
  EmailsSent: 'emails-sent',
  VideoProcessing: 'video-processing',
  VideoProcessed: 'video-processed',
  Posts: 'posts',
} as const;

export type Topic = (typeof Topics)[keyof typeof Topics];

export const ALL_TOPICS: readonly Topic[] = Object.values(Topics);
