import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { APP_CONFIG, ConsoleConfig } from '@app/config';
import { ALL_TOPICS } from '@app/contracts';
import { deadLetterTopicOf, errorMessageOf, KafkaMonitor, retryTopicOf, withDeadline } from '@app/messaging';
import type { AppHealth, GroupState, SystemSnapshot, TopicRate } from './status';

interface Listener {
  snapshot(snapshot: SystemSnapshot): void;
  /** The app is stopping: end the stream (the page reconnects). */
  end(): void;
}

const BROKER_DEADLINE_MS = 3000;
const HEALTH_DEADLINE_MS = 1500;

const sum = (values: Iterable<bigint>): number => {
  let total = 0n;
  for (const value of values) total += value;
  return Number(total);
};

/**
 * What the System view shows, read every CONSOLE_REFRESH_MS while at least one page listens (and not at all
 * otherwise): each app's readiness over HTTP, and from the brokers the messages per topic, each group's lag, retry
 * backlog and dead letters. Lag is KafkaMonitor.groupLag's, the number /metrics reports. One round serves every page.
 */
@Injectable()
export class SystemMonitor implements OnModuleDestroy {
  private readonly log = new Logger(SystemMonitor.name);
  private readonly listeners = new Set<Listener>();
  private timer?: NodeJS.Timeout;
  private previous?: { at: number; messages: Map<string, number> };
  private last?: SystemSnapshot;
  private round?: Promise<void>;

  constructor(
    private readonly monitor: KafkaMonitor,
    @Inject(APP_CONFIG) private readonly config: ConsoleConfig,
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

  /** No page listens: no more rounds, and no snapshot to hand a later page as if it were current. */
  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.last = undefined;
    this.previous = undefined;
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
    try {
      return await withDeadline('the brokers', BROKER_DEADLINE_MS * 2, this.readBrokers());
    } catch (error) {
      this.previous = undefined;
      const topics = ALL_TOPICS.map((topic) => ({ topic, messages: 0, perSecond: null }));
      const groups = this.config.CONSOLE_GROUPS.map((group) => ({
        group,
        lag: null,
        retryBacklog: null,
        deadLetters: null,
      }));
      return { kafka: { reachable: false, error: errorMessageOf(error) }, topics, groups };
    }
  }

  private async readBrokers(): Promise<Pick<SystemSnapshot, 'kafka' | 'topics' | 'groups'>> {
    const now = Date.now();
    const marks = await this.monitor.watermarks(
      [
        ...ALL_TOPICS,
        ...this.config.CONSOLE_GROUPS.flatMap((group) => [retryTopicOf(group), deadLetterTopicOf(group)]),
      ],
      BROKER_DEADLINE_MS,
    );
    const marksOf = (topic: string) => marks.find((entry) => entry.topic === topic)?.partitions ?? [];
    const messages = new Map(ALL_TOPICS.map((topic) => [topic, sum(marksOf(topic).map((p) => BigInt(p.high)))]));
    const previous = this.previous;
    this.previous = { at: now, messages };
    const topics: TopicRate[] = ALL_TOPICS.map((topic) => {
      const count = messages.get(topic) ?? 0;
      const before = previous?.messages.get(topic);
      const seconds = previous ? (now - previous.at) / 1000 : 0;
      const perSecond = before !== undefined && seconds > 0 ? Math.max(0, (count - before) / seconds) : null;
      return { topic, messages: count, perSecond: perSecond === null ? null : Math.round(perSecond * 10) / 10 };
    });

    const groups: GroupState[] = [];
    for (const group of this.config.CONSOLE_GROUPS) {
      const retry = retryTopicOf(group);
      // Every topic the group committed on, and its retry topic by name: a retry waiting there is often not yet
      // committed on, and an uncommitted partition only comes back when asked for. Durable groups start at the
      // earliest offset, so an uncommitted partition counts from its low watermark.
      const committed = await this.monitor.committedTopics(group, BROKER_DEADLINE_MS);
      const topicsOfGroup = new Set(committed.filter((topic) => topic !== deadLetterTopicOf(group)));
      if (marks.some((entry) => entry.topic === retry)) topicsOfGroup.add(retry);
      const rows = await this.monitor.groupLag(group, [...topicsOfGroup], true, BROKER_DEADLINE_MS);
      const lagOf = (retries: boolean) =>
        rows.filter((row) => (row.topic === retry) === retries).reduce((total, row) => total + row.lag, 0);
      const deadLetters = sum(marksOf(deadLetterTopicOf(group)).map((p) => BigInt(p.high) - BigInt(p.low)));
      groups.push({ group, lag: lagOf(false), retryBacklog: lagOf(true), deadLetters });
    }
    return { kafka: { reachable: true }, topics, groups };
  }
}
