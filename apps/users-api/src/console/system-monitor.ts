import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';

import { APP_CONFIG, UsersApiConfig } from '@app/config';
import { ALL_TOPICS } from '@app/contracts';
import {
  deadLetterTopicOf,
  errorMessageOf,
  KAFKA,
  Kafka,
  KafkaAdmin,
  retryTopicOf,
  withDeadline,
} from '@app/messaging';

export interface AppHealth {
  name: string;
  /** `ready` (200), `not-ready` (503: its body says why) or `unreachable` (no answer in time). */
  status: 'ready' | 'not-ready' | 'unreachable';
  detail?: string;
}

export interface TopicRate {
  topic: string;
  /** Messages ever written (sum of the partitions' high watermarks). */
  messages: number;
  /** Since the previous snapshot; null on the first. */
  perSecond: number | null;
}

export interface GroupState {
  group: string;
  /** Messages of its topics not yet committed; null when unknown (the broker did not answer). */
  lag: number | null;
  /** Failed messages waiting on the group's retry topic. */
  retryBacklog: number | null;
  /** Messages on the group's dead-letter topic. */
  deadLetters: number | null;
}

export interface SystemSnapshot {
  at: string;
  apps: AppHealth[];
  kafka: { reachable: boolean; error?: string };
  topics: TopicRate[];
  groups: GroupState[];
}

interface Listener {
  snapshot(snapshot: SystemSnapshot): void;
  /** The app is stopping: end the stream (the page reconnects to another replica). */
  end(): void;
}

const BROKER_DEADLINE_MS = 3000;
const HEALTH_DEADLINE_MS = 1500;

/**
 * What the console's System view shows, read every CONSOLE_REFRESH_MS while at least one page listens (and not at
 * all otherwise): each app's readiness over HTTP, and from the brokers the messages per topic, each group's lag,
 * retry backlog and dead letters. One round serves every open page.
 */
@Injectable()
export class SystemMonitor implements OnModuleDestroy {
  private readonly log = new Logger(SystemMonitor.name);
  private readonly listeners = new Set<Listener>();
  private timer?: NodeJS.Timeout;
  private admin?: KafkaAdmin;
  private previous?: { at: number; messages: Map<string, number> };
  private last?: SystemSnapshot;
  private round?: Promise<void>;

  constructor(
    @Inject(KAFKA) private readonly kafka: Kafka,
    @Inject(APP_CONFIG) private readonly config: UsersApiConfig,
  ) {}

  /** Calls `listener` with the latest snapshot at once (when there is one) and with each new one; returns the undo. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    if (this.last) listener.snapshot(this.last);
    if (!this.timer) {
      void this.refresh();
      this.timer = setInterval(() => void this.refresh(), this.config.CONSOLE_REFRESH_MS);
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  async onModuleDestroy(): Promise<void> {
    // Open streams would hold the HTTP server's close until the shutdown deadline.
    for (const listener of this.listeners) listener.end();
    this.listeners.clear();
    this.stop();
    await this.round?.catch(() => undefined);
  }

  /** No page listens: no more rounds, no client, and no snapshot to hand a later page as if it were current. */
  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.last = undefined;
    this.previous = undefined;
    this.dropAdmin();
  }

  private dropAdmin(): void {
    const admin = this.admin;
    this.admin = undefined;
    void admin?.disconnect().catch(() => undefined);
  }

  /** One round at a time: a slow broker makes rounds late, never piled up. */
  private refresh(): Promise<void> {
    this.round ??= this.snapshot()
      .then((snapshot) => {
        if (this.timer === undefined) return; // stopped meanwhile
        this.last = snapshot;
        for (const listener of this.listeners) listener.snapshot(snapshot);
      })
      .catch((error: unknown) => this.log.warn(`system snapshot failed: ${errorMessageOf(error)}`))
      .finally(() => {
        this.round = undefined;
      });
    return this.round;
  }

  async snapshot(): Promise<SystemSnapshot> {
    const [apps, brokers] = await Promise.all([this.health(), this.fromBrokers()]);
    return { at: new Date().toISOString(), apps, ...brokers };
  }

  private health(): Promise<AppHealth[]> {
    return Promise.all(
      this.config.CONSOLE_APPS.map(async ({ name, url }): Promise<AppHealth> => {
        try {
          const response = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(HEALTH_DEADLINE_MS) });
          const body = (await response.json().catch(() => ({}))) as { status?: string };
          if (response.ok) return { name, status: 'ready' };
          return { name, status: 'not-ready', detail: `${response.status} ${body.status ?? ''}`.trim() };
        } catch (error) {
          return { name, status: 'unreachable', detail: errorMessageOf(error) };
        }
      }),
    );
  }

  private async fromBrokers(): Promise<Pick<SystemSnapshot, 'kafka' | 'topics' | 'groups'>> {
    const unknown = this.config.CONSOLE_GROUPS.map((group) => ({
      group,
      lag: null,
      retryBacklog: null,
      deadLetters: null,
    }));
    try {
      return await withDeadline('the brokers', BROKER_DEADLINE_MS * 2, this.readBrokers());
    } catch (error) {
      // The next round starts with a new client: the old one may hold a dead connection.
      this.dropAdmin();
      this.previous = undefined;
      const topics = ALL_TOPICS.map((topic) => ({ topic, messages: 0, perSecond: null }));
      return { kafka: { reachable: false, error: errorMessageOf(error) }, topics, groups: unknown };
    }
  }

  private async readBrokers(): Promise<Pick<SystemSnapshot, 'kafka' | 'topics' | 'groups'>> {
    // No retries of its own: a round that fails is reported as such, and the next one tries again.
    const admin = (this.admin ??= this.kafka.admin({ retry: { retries: 0 } }));
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const watermarks = new Map<string, Map<number, { low: bigint; high: bigint }>>();
    const marksOf = async (topic: string) => {
      if (!existing.has(topic)) return new Map<number, { low: bigint; high: bigint }>();
      let marks = watermarks.get(topic);
      if (!marks) {
        marks = new Map(
          (await admin.fetchTopicOffsets(topic)).map((w) => [
            w.partition,
            { low: BigInt(w.low), high: BigInt(w.high) },
          ]),
        );
        watermarks.set(topic, marks);
      }
      return marks;
    };

    const now = Date.now();
    const messages = new Map<string, number>();
    for (const topic of ALL_TOPICS) {
      let sum = 0n;
      for (const { high } of (await marksOf(topic)).values()) sum += high;
      messages.set(topic, Number(sum));
    }
    const previous = this.previous;
    this.previous = { at: now, messages };
    const topics = ALL_TOPICS.map((topic) => {
      const count = messages.get(topic) ?? 0;
      const before = previous?.messages.get(topic);
      const seconds = previous ? (now - previous.at) / 1000 : 0;
      const perSecond = before !== undefined && seconds > 0 ? Math.max(0, (count - before) / seconds) : null;
      return { topic, messages: count, perSecond: perSecond === null ? null : Math.round(perSecond * 10) / 10 };
    });

    const groups: GroupState[] = [];
    for (const group of this.config.CONSOLE_GROUPS) {
      // Every topic the group committed on, and its retry topic by name: a retry waiting there is often not yet
      // committed on, and an uncommitted partition only comes back when asked for.
      const retry = existing.has(retryTopicOf(group))
        ? await admin.fetchOffsets({ groupId: group, topics: [retryTopicOf(group)] })
        : [];
      const committed = [
        ...(await admin.fetchOffsets({ groupId: group })).filter((entry) => entry.topic !== retryTopicOf(group)),
        ...retry,
      ];
      let lag = 0n;
      let retryBacklog = 0n;
      for (const { topic, partitions } of committed) {
        if (topic.endsWith('.dlt')) continue;
        const marks = await marksOf(topic);
        for (const { partition, offset } of partitions) {
          const mark = marks.get(partition);
          if (!mark) continue;
          // Nothing committed yet: everything still on the partition is waiting.
          const from = BigInt(offset) >= 0n ? BigInt(offset) : mark.low;
          const waiting = mark.high > from ? mark.high - from : 0n;
          if (topic === retryTopicOf(group)) retryBacklog += waiting;
          else lag += waiting;
        }
      }
      let deadLetters = 0n;
      for (const { low, high } of (await marksOf(deadLetterTopicOf(group))).values()) deadLetters += high - low;
      groups.push({ group, lag: Number(lag), retryBacklog: Number(retryBacklog), deadLetters: Number(deadLetters) });
    }
    return { kafka: { reachable: true }, topics, groups };
  }
}
