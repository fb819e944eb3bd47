import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  ConsumerObserver,
  errorMessageOf,
  KafkaMonitor,
  MessageOutcome,
  PartitionLag,
  retryTopicOf,
} from '@app/messaging';
import { ConsumerServers } from './consumer-servers';
import { isContributor, isMetricsContributor } from './contributor';
import { requestOutcome } from './logging';

interface GroupLag {
  rows: PartitionLag[];
  /** Groups whose lag could be read this round. */
  read: Set<string>;
}

let defaults: Registry | undefined;

/**
 * Process metrics (CPU, memory, event loop, GC) belong to the process, not to an app: collected once, into their
 * own registry, however many apps a process boots (tests boot several), and merged into each app's exposition.
 */
function processRegistry(): Registry {
  if (!defaults) {
    defaults = new Registry();
    collectDefaultMetrics({ register: defaults });
  }
  return defaults;
}

const HANDLER_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * The app's Prometheus registry: process defaults, HTTP request durations, consumer outcomes and handler durations
 * (fed by the consumer servers as messages finish), consumer lag and retry backlog (asked of the broker when
 * scraped), and whatever contributors add (the outbox's pending rows).
 */
@Injectable()
export class RuntimeMetrics implements ConsumerObserver, OnApplicationBootstrap {
  private readonly log = new Logger(RuntimeMetrics.name);
  readonly registry = new Registry();
  private readonly messages: Counter<'group' | 'event_type' | 'outcome'>;
  private readonly handlerSeconds: Histogram<'group' | 'event_type' | 'outcome'>;
  private readonly httpSeconds: Histogram<'method' | 'route' | 'status'>;
  /** One broker round per scrape, shared by the lag and backlog gauges. */
  private lagRound?: Promise<GroupLag>;

  constructor(
    private readonly servers: ConsumerServers,
    private readonly monitor: KafkaMonitor,
    private readonly discovery: DiscoveryService,
  ) {
    const registers = [this.registry];

    this.messages = new Counter({
      name: 'kafka_consumer_messages_total',
      help: 'Messages finished by consumer group, event type and outcome (handled, duplicate, retried, dead-lettered, failed, skipped)',
      labelNames: ['group', 'event_type', 'outcome'],
      registers,
    });
    this.handlerSeconds = new Histogram({
      name: 'kafka_consumer_handler_duration_seconds',
      help: 'Time a handler ran (inbox included), by consumer group, event type and outcome',
      labelNames: ['group', 'event_type', 'outcome'],
      buckets: HANDLER_BUCKETS,
      registers,
    });
    this.httpSeconds = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by method, matched route and status code (499: the client aborted the request)',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    const lag: Gauge<string> = new Gauge({
      name: 'kafka_consumer_group_lag',
      help: 'Messages between the group’s committed offset and the high watermark, per topic and partition',
      labelNames: ['group', 'topic', 'partition'],
      registers,
      collect: async () => {
        lag.reset();
        for (const row of (await this.lag()).rows) {
          lag.set({ group: row.group, topic: row.topic, partition: String(row.partition) }, row.lag);
        }
      },
    });
    const backlog: Gauge<string> = new Gauge({
      name: 'kafka_consumer_retry_backlog',
      help: 'Messages waiting on the group’s retry topic',
      labelNames: ['group'],
      registers,
      collect: async () => {
        backlog.reset();
        const { rows, read } = await this.lag();
        for (const server of this.servers.all()) {
          const group = server.consumerStatus().consumerGroup;
          if (server.consumerStatus().groupKind !== 'durable' || !read.has(group)) continue;
          const retry = retryTopicOf(group);
          const waiting = rows.filter((r) => r.group === group && r.topic === retry).reduce((n, r) => n + r.lag, 0);
          backlog.set({ group }, waiting);
        }
      },
    });
    const reachable: Gauge<string> = new Gauge({
      name: 'kafka_cluster_reachable',
      help: '1 when the last probe of the Kafka cluster answered in time, else 0',
      registers,
      collect: () => {
        reachable.set(this.monitor.brokerStatus().reachable ? 1 : 0);
      },
    });
    const assigned: Gauge<string> = new Gauge({
      name: 'kafka_consumer_assigned_partitions',
      help: 'Partitions assigned to this replica, by consumer group',
      labelNames: ['group'],
      registers,
      collect: () => {
        assigned.reset();
        for (const server of this.servers.all()) {
          const { consumerGroup, membership } = server.consumerStatus();
          const count =
            membership.state === 'joined'
              ? Object.values(membership.assigned).reduce((n, partitions) => n + partitions.length, 0)
              : 0;
          assigned.set({ group: consumerGroup }, count);
        }
      },
    });
  }

  onApplicationBootstrap(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!isContributor(instance)) continue;
      if (isMetricsContributor(instance)) instance.registerMetrics(this.registry);
    }
  }

  message(group: string, eventType: string, outcome: MessageOutcome, handlerSeconds?: number): void {
    this.messages.inc({ group, event_type: eventType, outcome });
    if (handlerSeconds !== undefined)
      this.handlerSeconds.observe({ group, event_type: eventType, outcome }, handlerSeconds);
  }

  /**
   * Express middleware timing every request once its answer finished or its connection closed, with the status
   * requestOutcome gives (499: the client aborted it; 408: cut off at HTTP_REQUEST_TIMEOUT_MS); the route label is
   * the matched route pattern, never the raw path. A stream the client left after its answer started (SSE, a video
   * seek) is not timed: its duration is no request latency.
   */
  httpMiddleware() {
    return (request: Request, response: Response, next: NextFunction): void => {
      const end = this.httpSeconds.startTimer();
      let timed = false;
      const done = () => {
        const { status, left } = requestOutcome(request, response);
        if (timed || left) return;
        timed = true;
        const route = (request.route as { path?: string } | undefined)?.path;
        end({
          method: request.method,
          route: route ? `${request.baseUrl}${route}` : '(unmatched)',
          status: String(status),
        });
      };
      response.once('finish', done);
      response.once('close', done);
      next();
    };
  }

  /** The registry's text plus the process's default metrics. */
  async exposition(): Promise<{ contentType: string; text: string }> {
    const merged = Registry.merge([processRegistry(), this.registry]);
    return { contentType: merged.contentType, text: await merged.metrics() };
  }

  /** One broker round per scrape, shared by the lag and backlog gauges (collected side by side). */
  private lag(): Promise<GroupLag> {
    this.lagRound ??= this.readLag().finally(() => {
      this.lagRound = undefined;
    });
    return this.lagRound;
  }

  private async readLag(): Promise<GroupLag> {
    const rows: PartitionLag[] = [];
    const read = new Set<string>();
    for (const server of this.servers.all()) {
      const status = server.consumerStatus();
      if (status.topics.length === 0) continue;
      try {
        const lag = await this.monitor.groupLag(status.groupId, status.topics, server.fromEarliest);
        // A per-instance group's id is unique to the process: report it under its declared name.
        rows.push(...lag.map((row) => ({ ...row, group: status.consumerGroup })));
        read.add(status.consumerGroup);
      } catch (error) {
        // Left out rather than stale or zero: a missing series says "unknown", a number would lie.
        this.log.debug(`lag of ${status.groupId} unavailable: ${errorMessageOf(error)}`);
      }
    }
    return { rows, read };
  }
}
