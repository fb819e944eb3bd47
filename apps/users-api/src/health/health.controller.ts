import { Controller, Get, HttpCode, Res } from '@nestjs/common';
import type { Response } from 'express';
import { OutboxObservability, OutboxRelayStatus, relayStalled } from '@app/outbox';

interface Health {
  status: 'ok' | 'degraded' | 'down';
  database: 'up' | 'down';
  /** pending: not yet published (parked rows included); parked: rows the broker refused, waiting for an operator. */
  /** The relay's state without its last error, whose text can name hosts: operators read it on /health/ready. */
  relay: Omit<OutboxRelayStatus, 'lastError'> & { pending: number | null; parkedRows: number | null };
}

/**
 * `GET /health`: the API's own summary, kept for existing checks. `/health/ready` (every app) is the full report.
 */
@Controller('health')
export class HealthController {
  constructor(private readonly outbox: OutboxObservability) {}

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
      ({ pending, parked: parkedRows } = await this.outbox.backlog());
    } catch {
      database = 'down';
    }
    const full = this.outbox.relayStatus();
    const { lastError: _detail, ...relay } = full;
    const status: Health['status'] =
      database === 'down' ? 'down' : relayStalled(full) || (parkedRows ?? 0) > 0 ? 'degraded' : 'ok';
    if (status === 'down') response.status(503);
    return { status, database, relay: { ...relay, pending, parkedRows } };
  }
}
