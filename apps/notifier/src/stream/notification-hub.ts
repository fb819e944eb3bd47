import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { Request, Response } from 'express';
import { Counter, Gauge, Registry } from 'prom-client';
import { APP_CONFIG, NotifierConfig } from '@app/config';
import { EVENT_TYPES, Envelope, parseEvent, topicOf } from '@app/contracts';
import { errorMessageOf, HistoryMessage, Positions, TopicHistory } from '@app/messaging';
import { MetricsContributor, RuntimeContributor } from '@app/runtime';
import { copyPositions, decodePositions, STREAM_TOPICS } from './positions';
import { DropReason, NOT_AN_EVENT, SseClient, StreamEvent } from './sse-client';

/** SSE event names: the types on the streamed topics without their version (`post.created`). */
export const STREAM_EVENT_NAMES: readonly string[] = EVENT_TYPES.filter((type) =>
  (STREAM_TOPICS as readonly string[]).includes(topicOf(type)),
).map(nameOf);

export function nameOf(type: string): string {
  return type.replace(/\.v\d+$/, '');
}

export class StreamRefusedError extends Error {
  constructor(
    readonly status: 400 | 503,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Every open stream of this replica, fed by the replica's per-instance consumer. Keeps no history: a client that
 * reconnects with Last-Event-ID is replayed what it missed from the broker (TopicHistory), on any replica, then
 * joins the live feed with no gap and nothing twice (its positions filter what both sources deliver).
 */
@RuntimeContributor()
@Injectable()
export class NotificationHub implements MetricsContributor, OnModuleDestroy {
  private readonly log = new Logger(NotificationHub.name);
  private readonly clients = new Set<SseClient>();
  /** The next offset the live feed will deliver, per partition, as far as this replica knows. */
  private live?: Positions;
  private readonly replica = `${hostname()}-${process.pid}-${randomUUID().slice(0, 4)}`;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly dropped = new Counter({
    name: 'notifier_sse_dropped_clients_total',
    help: 'Streams closed because the client fell further behind than NOTIFIER_CLIENT_QUEUE_MAX',
    labelNames: ['reason'] as const,
    registers: [],
  });
  private readonly sent = new Counter({
    name: 'notifier_sse_events_sent_total',
    help: 'Events written to streams (each client counted)',
    registers: [],
  });
  private readonly resumes = new Counter({
    name: 'notifier_sse_resumes_total',
    help: 'Streams opened with Last-Event-ID, by outcome',
    labelNames: ['outcome'] as const,
    registers: [],
  });

  constructor(
    @Inject(APP_CONFIG) private readonly config: NotifierConfig,
    private readonly history: TopicHistory,
  ) {
    this.heartbeat = setInterval(() => {
      for (const client of this.clients) client.comment('keep-alive');
    }, config.NOTIFIER_HEARTBEAT_MS);
    this.heartbeat.unref();
    // Every series from the start, at zero: an alert on a rise needs the zero before it.
    this.dropped.inc({ reason: 'overflow' }, 0);
    for (const outcome of ['replayed', 'too-far-back', 'failed']) this.resumes.inc({ outcome }, 0);
  }

  registerMetrics(registry: Registry): void {
    const clients = this.clients;
    registry.registerMetric(
      new Gauge({
        name: 'notifier_sse_connections',
        help: 'Open event streams on this replica',
        registers: [],
        collect() {
          this.set(clients.size);
        },
      }),
    );
    registry.registerMetric(
      new Gauge({
        name: 'notifier_sse_queued_events',
        help: 'Events waiting for slow clients, over all streams',
        registers: [],
        collect() {
          let queued = 0;
          for (const client of clients) queued += client.queued;
          this.set(queued);
        },
      }),
    );
    registry.registerMetric(this.dropped);
    registry.registerMetric(this.sent);
    registry.registerMetric(this.resumes);
  }

  /** An event from the live feed (this replica's per-instance consumer). */
  publish(event: Envelope & { type: string }, at: { topic: string; partition: number; offset: number }): void {
    if (this.live) {
      const partitions = (this.live[at.topic] ??= []);
      partitions[at.partition] = Math.max(partitions[at.partition] ?? 0, at.offset + 1);
    }
    const streamEvent: StreamEvent = { ...at, name: nameOf(event.type), data: serialise(event) };
    for (const client of this.clients) this.count(client, () => client.offer(streamEvent));
  }

  /** Opens a stream: from now, or (with a last event id) from where the client left off. */
  async open(
    request: Request,
    response: Response,
    options: { types?: ReadonlySet<string>; lastEventId?: string },
  ): Promise<void> {
    if (this.clients.size >= this.config.NOTIFIER_MAX_CLIENTS) {
      throw new StreamRefusedError(503, 'NOTIFIER.FULL', `this replica serves ${this.clients.size} streams already`);
    }
    let from: Positions | undefined;
    if (options.lastEventId !== undefined) {
      try {
        from = decodePositions(options.lastEventId);
      } catch (error) {
        throw new StreamRefusedError(400, 'NOTIFIER.BAD_LAST_EVENT_ID', `Last-Event-ID ${errorMessageOf(error)}`);
      }
    }
    const now = copyPositions(await this.livePositions());

    response.status(200);
    response.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    response.setHeader('Cache-Control', 'no-cache, no-transform');
    response.setHeader('Connection', 'keep-alive');
    response.setHeader('X-Accel-Buffering', 'no');
    response.flushHeaders();
    response.write(`retry: 2000\n\n`);

    const client = new SseClient(response, from ?? now, options.types, this.config.NOTIFIER_CLIENT_QUEUE_MAX, (c, r) =>
      this.onDrop(c, r),
    );
    this.clients.add(client);
    const gone = new AbortController();
    request.on('close', () => {
      gone.abort();
      this.clients.delete(client);
      client.close();
    });
    if (!from) {
      client.control('ready', { replica: this.replica, resumed: false });
      return;
    }
    client.holdLive();
    try {
      const bounds = await this.history.bounds(STREAM_TOPICS);
      const to: Positions = {};
      let missed = 0;
      let unreachable: string | undefined;
      for (const topic of STREAM_TOPICS) {
        to[topic] = bounds[topic].map((b) => b.high);
        bounds[topic].forEach(({ low, high }, partition) => {
          const at = (from[topic] ??= [])[partition] ?? low;
          from[topic][partition] = at;
          if (at < low) unreachable ??= `${topic}[${partition}] no longer holds offset ${at} (retention)`;
          else if (at > high)
            unreachable ??= `${topic}[${partition}] has no offset ${at} yet: the id is not from this cluster`;
          else missed += high - at;
        });
      }
      if (unreachable === undefined && missed > this.config.NOTIFIER_RESUME_MAX_EVENTS) {
        unreachable = `${missed} events were missed; a resume replays at most ${this.config.NOTIFIER_RESUME_MAX_EVENTS}`;
      }
      if (unreachable !== undefined) {
        this.resumes.inc({ outcome: 'too-far-back' });
        client.moveTo(now);
        client.control('resync', {
          replica: this.replica,
          reason: unreachable,
          missed,
          limit: this.config.NOTIFIER_RESUME_MAX_EVENTS,
          advice: 'reload the state you show (GET /posts, GET /videos/:id): the stream goes on from now',
        });
        client.goLive();
        return;
      }
      client.moveTo(from);
      client.control('ready', { replica: this.replica, resumed: true, replaying: missed });
      await this.history.read(from, to, (message) => this.count(client, () => client.deliver(fromHistory(message))), {
        signal: gone.signal,
        groupPrefix: `notifier.${this.replica}`,
        timeoutMs: 60_000,
      });
      this.resumes.inc({ outcome: 'replayed' });
      client.goLive();
    } catch (error) {
      if (gone.signal.aborted) return;
      this.resumes.inc({ outcome: 'failed' });
      this.log.warn(`resume failed, closing the stream (the client retries): ${errorMessageOf(error)}`);
      this.clients.delete(client);
      client.close();
    }
  }

  get connections(): number {
    return this.clients.size;
  }

  onModuleDestroy(): void {
    clearInterval(this.heartbeat);
    // Clients reconnect (to another replica) with their last id and lose nothing.
    for (const client of this.clients) client.close();
    this.clients.clear();
  }

  private async livePositions(): Promise<Positions> {
    if (!this.live) {
      const bounds = await this.history.bounds(STREAM_TOPICS);
      const live: Positions = {};
      for (const topic of STREAM_TOPICS) {
        const partitions = (live[topic] ??= []);
        bounds[topic].forEach(({ high }, partition) => {
          partitions[partition] = Math.max(partitions[partition] ?? 0, high);
        });
      }
      this.live = live;
    }
    return this.live;
  }

  private count(client: SseClient, deliver: () => void): void {
    const before = client.sent;
    deliver();
    if (client.sent > before) this.sent.inc(client.sent - before);
  }

  private onDrop(client: SseClient, reason: DropReason): void {
    this.clients.delete(client);
    this.dropped.inc({ reason });
    this.log.warn(`a stream fell more than ${this.config.NOTIFIER_CLIENT_QUEUE_MAX} events behind and was closed`);
  }
}

function serialise(event: Envelope & { type: string }): string {
  return JSON.stringify({
    id: event.id,
    type: event.type,
    time: event.time,
    subject: event.subject,
    correlationId: event.correlationid,
    data: event.data,
  });
}

function fromHistory({ topic, partition, offset, message }: HistoryMessage): StreamEvent {
  try {
    const event = parseEvent(message.value);
    return { topic, partition, offset, name: nameOf(event.type), data: serialise(event) };
  } catch {
    // Not a valid event: the live feed skipped it too; only the position moves on.
    return { topic, partition, offset, name: NOT_AN_EVENT, data: '{}' };
  }
}
