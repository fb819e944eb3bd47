import { Controller, Get, HttpCode, Res } from '@nestjs/common';
import type { Response } from 'express';
import { DataSource, IsNull, Not } from 'typeorm';
import { OutboxMessage, OutboxRelay, OutboxRelayStatus } from '@app/outbox';

interface Health {
  status: 'ok' | 'degraded' | 'down';
  database: 'up' | 'down';
  /** pending: not yet published (parked rows included); parked: rows the broker refused, waiting for an operator. */
  relay: OutboxRelayStatus & { pending: number | null; parkedRows: number | null };
}

@Controller('health')
export class HealthController {
  constructor(
    private readonly dataSource: DataSource,
    private readonly relay: OutboxRelay,
  ) {}

  /**
   * 200 while the API can take registrations (database up). Kafka trouble or a parked outbox row only degrades it,
   * since events wait in the outbox.
   */
  @Get()
  @HttpCode(200)
  async check(@Res({ passthrough: true }) response: Response): Promise<Health> {
    let database: Health['database'] = 'up';
    let pending: number | null = null;
    let parkedRows: number | null = null;
    try {
      const outbox = this.dataSource.getRepository(OutboxMessage);
      pending = await outbox.countBy({ publishedAt: IsNull() });
      parkedRows = await outbox.countBy({ publishedAt: IsNull(), parkedAt: Not(IsNull()) });
    } catch {
      database = 'down';
    }
    const relay = this.relay.status();
    const status: Health['status'] =
      database === 'down' ? 'down' : relay.failingSince || (parkedRows ?? 0) > 0 ? 'degraded' : 'ok';
    if (status === 'down') response.status(503);
    return { status, database, relay: { ...relay, pending, parkedRows } };
  }
}
