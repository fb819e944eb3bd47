import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { Request, Response } from 'express';
import { Counter, Gauge, Registry } from 'prom-client';
import { APP_CONFIG, NotifierConfig } from '@app/config';
import type { Envelope } from '@app/contracts';
import { errorMessageOf, HistoryMessage, Positions, TopicHistory } from '@app/messaging';
import { AppError, MetricsContributor, RuntimeContributor } from '@app/runtime';
import { LivePositions } from './live-positions';
import { copyPositions, StreamScope } from './positions';
import { RecentEvents } from './recent-events';
import { DropReason, SseClient, StreamEvent } from './sse-client';
import { StreamKeys } from './stream-keys';
import { fromHistory, toStreamEvent } from './stream-events';

/** Event ids remembered with their offsets, to drop a relay's re-send (about 2 MB). */
const RECENT_EVENT_IDS = 10_000;

/** A stream refused before it started: answered in the one error shape (ApiErrorFilter). */
export class StreamRefusedError extends AppError {
  override readonly name = 'StreamRefusedError';
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
 * joins the live feed with no gap and nothing twice (its positions filter what both sources deliver). The feed
 * itself has no gap: the consumer starts every join where the feed stands (LivePositions), and should it still
 * deliver past that, the hole is read from the topic first — or, if the topic no longer holds it, every client is
 * told with `resync`. An event id a client has passed is not sent to it again at another offset.
 */
@RuntimeContributor()
@Injectable()
export class NotificationHub implements MetricsContributor, OnModuleDestroy {
  private readonly log = new Logger(NotificationHub.name);
  private readonly clients = new Set<SseClient>();
  private readonly recent = new RecentEvents(RECENT_EVENT_IDS);
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
  private readonly repeats = new Counter({
    name: 'notifier_sse_repeats_dropped_total',
    help: 'Events not sent to a client that had passed the same event id at another offset (a relay re-send)',
    registers: [],
  });
  private readonly gaps = new Counter({
    name: 'notifier_live_gaps_total',
    help: 'Jumps past the position of the live feed, filled from the topic or announced to every client (resync)',
    labelNames: ['outcome'] as const,
    registers: [],
  });

  constructor(
    @Inject(APP_CONFIG) private readonly config: NotifierConfig,
    private readonly history: TopicHistory,
    private readonly live: LivePositions,
    private readonly keys: StreamKeys,
  ) {
    this.heartbeat = setInterval(() => {
      for (const client of this.clients) client.comment('keep-alive');
    }, config.NOTIFIER_HEARTBEAT_MS);
    this.heartbeat.unref();
    // Every series from the start, at zero: an alert on a rise needs the zero before it.
    this.dropped.inc({ reason: 'overflow' }, 0);
    for (const outcome of ['replayed', 'too-far-back', 'failed']) this.resumes.inc({ outcome }, 0);
    for (const outcome of ['filled', 'resync']) this.gaps.inc({ outcome }, 0);
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
    registry.registerMetric(this.repeats);
    registry.registerMetric(this.gaps);
  }

  /**
   * An event from the live feed (this replica's per-instance consumer); resolves once every client was offered it.
   * One the feed delivered already (a re-fetch) is ignored; one past the feed's position comes after the hole.
   */
  async publish(event: Envelope & { type: string }, at: { topic: string; partition: number; offset: number }) {
    const expected = this.live.next(at.topic, at.partition);
    if (expected !== undefined && at.offset < expected) return;
    if (expected !== undefined && at.offset > expected) await this.fillGap(at.topic, at.partition, expected, at.offset);
    this.fanOut(toStreamEvent(event, at));
  }

  private fanOut(event: StreamEvent): void {
    this.live.passed(event.topic, event.partition, event.offset);
    if (event.eventId !== undefined) this.recent.record(event.eventId, event);
    for (const client of this.clients) this.count(client, () => client.offer(event));
  }

  /** Offsets [from, to) of a partition, which the consumer skipped: from the topic, or a resync where it has none. */
  private async fillGap(topic: string, partition: number, from: number, to: number): Promise<void> {
    const where = `${topic}[${partition}] ${from}–${to - 1}`;
    let next = from;
    let resynced = false;
    // In stream order: before the first event past the part that cannot be streamed.
    const resync = (reason: string) => {
      if (resynced) return;
      resynced = true;
      this.gaps.inc({ outcome: 'resync' });
      this.log.error(`the live feed skipped ${where} and cannot fill it (${reason}); clients told to resync`);
      for (const client of this.clients) {
        client.control('resync', {
          replica: this.replica,
          reason: `${where} could not be streamed: ${reason}`,
          advice: 'reload the state you show (GET /posts, GET /videos/:id): the stream goes on from now',
        });
      }
    };
    try {
      if (to - from > this.config.NOTIFIER_RESUME_MAX_EVENTS) throw new Error(`${to - from} events were skipped`);
      const start: Positions = { [topic]: [] };
      const end: Positions = { [topic]: [] };
      start[topic][partition] = from;
      end[topic][partition] = to;
      await this.history.read(
        start,
        end,
        (message) => {
          if (message.offset > next) resync(`offsets ${next}–${message.offset - 1} are no longer held`);
          next = message.offset + 1;
          this.fanOut(fromHistory(message));
        },
        { groupPrefix: `notifier.${this.replica}`, timeoutMs: 30_000 },
      );
      if (next < to) resync(`offsets ${next}–${to - 1} are no longer held`);
    } catch (error) {
      resync(errorMessageOf(error));
    }
    if (resynced) return;
    this.gaps.inc({ outcome: 'filled' });
    this.log.warn(`the live feed skipped ${where}; filled from the topic`);
  }

  /**
   * Opens a stream (the public one, or one user's): from now, from where the client left off (a last event id given
   * out on this stream), or with the last `recent` events of each partition first (a page that shows what happened
   * before it loaded). A stream with an `until` (the end of the user's sign-in) ends then: the client reconnects with
   * a renewed sign-in and its last id.
   */
  async open(
    request: Request,
    response: Response,
    options: { stream: StreamScope; types?: ReadonlySet<string>; lastEventId?: string; recent?: number; until?: Date },
  ): Promise<void> {
    const { stream } = options;
    const topics = stream.topics;
    if (this.clients.size >= this.config.NOTIFIER_MAX_CLIENTS) {
      throw new StreamRefusedError(503, 'NOTIFIER.FULL', `this replica serves ${this.clients.size} streams already`);
    }
    let from: Positions | undefined;
    if (options.lastEventId !== undefined) {
      try {
        from = this.keys.verifyId(stream, options.lastEventId);
      } catch (error) {
        throw new StreamRefusedError(400, 'NOTIFIER.BAD_LAST_EVENT_ID', `Last-Event-ID ${errorMessageOf(error)}`);
      }
    }
    // A resume wins over `recent`: EventSource reconnects to the same URL with Last-Event-ID.
    const recent = from === undefined ? options.recent : undefined;
    if (recent !== undefined) from = {};
    // No stream before the feed's positions are known: it starts where the consumer will.
    const now = copyPositions(await this.live.current(), topics);

    response.status(200);
    response.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    response.setHeader('Cache-Control', 'no-cache, no-transform');
    response.setHeader('Connection', 'keep-alive');
    response.setHeader('X-Accel-Buffering', 'no');
    response.flushHeaders();
    response.write(`retry: 2000\n\n`);

    const client = new SseClient(
      response,
      stream,
      (positions) => this.keys.signId(stream, positions),
      from ?? now,
      options.types,
      this.config.NOTIFIER_CLIENT_QUEUE_MAX,
      (c, r) => this.onDrop(c, r),
      (event, positions) => this.recent.passedAnother(event.eventId!, event, positions),
    );
    this.clients.add(client);
    const gone = new AbortController();
    const expiry =
      options.until &&
      setTimeout(
        () => {
          this.clients.delete(client);
          client.close();
        },
        Math.max(0, options.until.getTime() - Date.now()),
      );
    expiry?.unref();
    request.on('close', () => {
      gone.abort();
      clearTimeout(expiry);
      this.clients.delete(client);
      client.close();
    });
    if (!from) {
      client.control('ready', { replica: this.replica, resumed: false });
      return;
    }
    client.holdLive();
    try {
      const bounds = await this.history.bounds(topics);
      const to: Positions = {};
      let missed = 0;
      let unreachable: string | undefined;
      for (const topic of topics) {
        to[topic] = bounds[topic].map((b) => b.high);
        bounds[topic].forEach(({ low, high }, partition) => {
          const at = (from[topic] ??= [])[partition] ?? (recent === undefined ? low : Math.max(low, high - recent));
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
      client.control('ready', { replica: this.replica, resumed: recent === undefined, replaying: missed });
      const replay = (message: HistoryMessage) => {
        const event = fromHistory(message);
        if (event.eventId !== undefined) this.recent.record(event.eventId, event);
        this.count(client, () => client.deliver(event));
      };
      await this.history.read(from, to, replay, {
        signal: gone.signal,
        groupPrefix: `notifier.${this.replica}`,
        timeoutMs: 60_000,
      });
      this.resumes.inc({ outcome: recent === undefined ? 'replayed' : 'recent' });
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

  private count(client: SseClient, deliver: () => void): void {
    const [sent, repeats] = [client.sent, client.repeats];
    deliver();
    if (client.sent > sent) this.sent.inc(client.sent - sent);
    if (client.repeats > repeats) this.repeats.inc(client.repeats - repeats);
  }

  private onDrop(client: SseClient, reason: DropReason): void {
    this.clients.delete(client);
    this.dropped.inc({ reason });
    this.log.warn(`a stream fell more than ${this.config.NOTIFIER_CLIENT_QUEUE_MAX} events behind and was closed`);
  }
}
