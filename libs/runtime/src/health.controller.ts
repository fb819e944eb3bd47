import { Controller, Get, Header, Inject, Res, ServiceUnavailableException } from '@nestjs/common';
import { DiscoveryService, ModuleRef } from '@nestjs/core';
import { HealthCheckResult, HealthCheckService, HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { EventProducer, KafkaMonitor, withDeadline } from '@app/messaging';
import { ConsumerServers } from './consumer-servers';
import { isContributor, isReadinessContributor, ReadinessContributor } from './contributor';
import { RuntimeMetrics } from './runtime-metrics';

export const RUNTIME_OPTIONS = Symbol('runtime:options');

export interface RuntimeOptions {
  app: string;
  /**
   * Whether a lost Kafka cluster fails readiness (503). users-api sets false: it keeps taking registrations while
   * the broker is away (the outbox holds the events), so a lost broker only degrades it.
   */
  kafkaRequiredForReady: boolean;
}

/**
 * What `/health/live` and `/health/ready` answer: the overall `status` (`ok`, or `error` with a 503) and each check
 * once, under its key in `details` (`{ status: 'up' | 'degraded' | 'down', ... }`). Terminus would also copy every
 * check under `info` or `error`; the answer leaves those copies out.
 */
export interface HealthReport {
  status: HealthCheckResult['status'];
  details: HealthCheckResult['details'];
}

const reportOf = ({ status, details }: HealthCheckResult): HealthReport => ({ status, details });

const DATABASE_TIMEOUT_MS = 2000;
const CONTRIBUTOR_TIMEOUT_MS = 3000;

/**
 * `GET /health/live`: the process serves HTTP (restart it if not). `GET /health/ready`: it can do its work — the
 * database answers, the Kafka cluster answers, every consumer has joined its group (with the partitions it holds,
 * or why not), plus what libs contribute (the outbox relay). 503 when something it needs is down; 200 with
 * `degraded` entries when it works but something needs attention. Both answer a HealthReport. `GET /metrics`:
 * Prometheus text format.
 */
@Controller()
export class RuntimeController {
  private contributors?: ReadinessContributor[];

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    private readonly monitor: KafkaMonitor,
    private readonly producer: EventProducer,
    private readonly servers: ConsumerServers,
    private readonly metrics: RuntimeMetrics,
    private readonly moduleRef: ModuleRef,
    private readonly discovery: DiscoveryService,
    @Inject(RUNTIME_OPTIONS) private readonly options: RuntimeOptions,
  ) {}

  @Get('health/live')
  async live(): Promise<HealthReport> {
    return reportOf(
      await this.health.check([
        () =>
          this.indicator.check('process').up({ app: this.options.app, uptimeSeconds: Math.round(process.uptime()) }),
      ]),
    );
  }

  @Get('health/ready')
  async ready(@Res({ passthrough: true }) response: Response): Promise<HealthReport> {
    const checks: (() => HealthIndicatorResult | Promise<HealthIndicatorResult>)[] = [
      () => this.kafka(),
      ...this.servers.all().map((_, i) => () => this.consumer(i)),
    ];
    const dataSource = this.dataSource();
    if (dataSource) checks.unshift(() => this.database(dataSource));
    for (const contributor of this.readinessContributors()) {
      checks.push(async () => {
        const session = this.indicator.check(contributor.readinessKey);
        try {
          const { status, ...data } = await withDeadline(
            contributor.readinessKey,
            CONTRIBUTOR_TIMEOUT_MS,
            contributor.readiness(),
          );
          if (status === 'up') return session.up(data);
          return status === 'degraded' ? session.degraded(data) : session.down(data);
        } catch (error) {
          return session.down({ message: error instanceof Error ? error.message : String(error) });
        }
      });
    }
    try {
      return reportOf(await this.health.check(checks));
    } catch (error) {
      // Answered here rather than thrown, so no app's exception filter reshapes the health report.
      if (!(error instanceof ServiceUnavailableException)) throw error;
      response.status(503);
      return reportOf(error.getResponse() as HealthCheckResult);
    }
  }

  @Get('metrics')
  @Header('cache-control', 'no-store')
  async scrape(@Res() response: Response): Promise<void> {
    const { contentType, text } = await this.metrics.exposition();
    response.type(contentType).send(text);
  }

  private async database(dataSource: DataSource): Promise<HealthIndicatorResult> {
    const session = this.indicator.check('database');
    try {
      await withDeadline('the database', DATABASE_TIMEOUT_MS, dataSource.query('SELECT 1'));
      return session.up();
    } catch (error) {
      return session.down({ message: error instanceof Error ? error.message : String(error) });
    }
  }

  private kafka(): HealthIndicatorResult {
    const session = this.indicator.check('kafka');
    const broker = this.monitor.brokerStatus();
    const data = { ...broker, producer: this.producer.status() };
    if (broker.reachable) return session.up(data);
    return this.options.kafkaRequiredForReady ? session.down(data) : session.degraded(data);
  }

  private consumer(index: number): HealthIndicatorResult {
    const server = this.servers.all()[index];
    const status = server.consumerStatus();
    const session = this.indicator.check(`consumer:${status.consumerGroup}`);
    const { membership } = status;
    const data: Record<string, unknown> = {
      groupId: status.groupId,
      kind: status.groupKind,
      ...membership,
      ...(membership.state === 'joined' && Object.values(membership.assigned).every((p) => p.length === 0)
        ? { note: 'no partitions: the group has more members than partitions; this replica stands by' }
        : {}),
      paused: status.paused,
      // For a consumer that looks joined yet does nothing: when it last fetched, what it holds, how often replaced.
      lastFetchAt: status.lastFetchAt,
      batchesInFlight: status.batchesInFlight,
      stalls: status.stats.stalls,
    };
    const working = membership.state === 'joined' || membership.state === 'idle';
    // Without the broker the consumer cannot be working, whatever its last event said.
    if (working && this.monitor.brokerStatus().reachable) return session.up(data);
    const reason = working ? 'Kafka cluster unreachable' : membership.reason;
    // An app that serves without Kafka (users-api) is impaired, not unready, while its consumers cannot work.
    return this.options.kafkaRequiredForReady
      ? session.down({ ...data, reason })
      : session.degraded({ ...data, reason });
  }

  private dataSource(): DataSource | undefined {
    try {
      return this.moduleRef.get(DataSource, { strict: false });
    } catch {
      return undefined;
    }
  }

  private readinessContributors(): ReadinessContributor[] {
    this.contributors ??= this.discovery
      .getProviders()
      .map((w) => w.instance as unknown)
      .filter(isContributor)
      .filter(isReadinessContributor);
    return this.contributors;
  }
}
