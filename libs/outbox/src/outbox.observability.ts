import { Injectable } from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { withDeadline } from '@app/messaging';
import { MetricsContributor, ReadinessContributor, ReadinessReport, RuntimeContributor } from '@app/runtime';
import { OutboxRelay, OutboxRelayStatus, relayStalled } from './outbox.relay';
import { OutboxBacklog, OutboxRepository, poolOf } from './outbox.repository';

const BACKLOG_TIMEOUT_MS = 2000;

/**
 * The outbox as users-api's health and metrics see it: the relay's state and the backlog in the table. A failing
 * relay or a parked row degrades readiness (the API still takes registrations; events wait in the outbox).
 */
@RuntimeContributor()
@Injectable()
export class OutboxObservability implements ReadinessContributor, MetricsContributor {
  readonly readinessKey = 'outbox';

  private readonly rows: OutboxRepository;

  constructor(
    dataSource: DataSource,
    private readonly relay: OutboxRelay,
    schema: string,
  ) {
    this.rows = new OutboxRepository(poolOf(dataSource), schema);
  }

  backlog(): Promise<OutboxBacklog> {
    return this.rows.backlog();
  }

  relayStatus(): OutboxRelayStatus {
    return this.relay.status();
  }

  async readiness(): Promise<ReadinessReport> {
    const relay = this.relay.status();
    try {
      const backlog = await withDeadline('the outbox backlog query', BACKLOG_TIMEOUT_MS, this.backlog());
      const degraded = relayStalled(relay) || backlog.parked > 0;
      return { status: degraded ? 'degraded' : 'up', relay, ...backlog };
    } catch (error) {
      // The database entry says the database is down; this one says the backlog is unknown.
      return {
        status: 'degraded',
        relay,
        backlog: `unknown: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
  }

  registerMetrics(registry: Registry): void {
    let last: Promise<OutboxBacklog | undefined> | undefined;
    // One query per scrape for the three gauges, bounded: a hung database leaves them out instead of stalling /metrics.
    const read = () => {
      last ??= withDeadline('the outbox backlog query', BACKLOG_TIMEOUT_MS, this.backlog())
        .catch(() => undefined)
        .finally(() => {
          last = undefined;
        });
      return last;
    };
    const gauge = (name: string, help: string, pick: (b: OutboxBacklog) => number) => {
      const metric: Gauge = new Gauge({
        name,
        help,
        registers: [registry],
        collect: async () => {
          metric.reset();
          const backlog = await read();
          if (backlog) metric.set(pick(backlog));
        },
      });
    };
    gauge('outbox_pending_messages', 'Outbox rows not yet published (parked included)', (b) => b.pending);
    gauge('outbox_parked_messages', 'Outbox rows the broker refused, waiting for an operator', (b) => b.parked);
    gauge(
      'outbox_oldest_pending_age_seconds',
      'Age of the oldest unpublished outbox row',
      (b) => b.oldestPendingSeconds,
    );
    const leader: Gauge = new Gauge({
      name: 'outbox_relay_leader',
      help: '1 while this replica holds the relay lock and publishes',
      registers: [registry],
      collect: () => {
        leader.set(this.relay.status().leader ? 1 : 0);
      },
    });
  }
}
