import { Controller, Get, HttpCode, Res } from '@nestjs/common';
import type { Response } from 'express';
import { DataSource, IsNull } from 'typeorm';
import { OutboxMessage, OutboxRelay, OutboxRelayStatus } from '@app/outbox';

interface Health {
  status: 'ok' | 'degraded' | 'down';
  database: 'up' | 'down';
  relay: OutboxRelayStatus & { pending: number | null };
}

@Controller('health')
export class HealthController {
  constructor(
    private readonly dataSource: DataSource,
    private readonly relay: OutboxRelay,
  ) {}

  /** 200 while the API can take registrations (database up); Kafka trouble only degrades it, since events wait in the outbox. */
  @Get()
  @HttpCode(200)
  async check(@Res({ passthrough: true }) response: Response): Promise<Health> {
    let database: Health['database'] = 'up';
    let pending: number | null = null;
    try {
      pending = await this.dataSource.getRepository(OutboxMessage).countBy({ publishedAt: IsNull() });
    } catch {
      database = 'down';
    }
    const relay = this.relay.status();
    const status: Health['status'] = database === 'down' ? 'down' : relay.failingSince ? 'degraded' : 'ok';
    if (status === 'down') response.status(503);
    return { status, database, relay: { ...relay, pending } };
  }
}
