import { Controller, Get, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { SystemMonitor } from './system-monitor';

@Controller('system')
export class SystemController {
  constructor(private readonly monitor: SystemMonitor) {}

  /** `event: system` with a SystemSnapshot every CONSOLE_REFRESH_MS while the page is open. */
  @Get('stream')
  stream(@Req() request: Request, @Res() response: Response): void {
    response.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    response.setHeader('Cache-Control', 'no-cache, no-transform');
    response.setHeader('X-Accel-Buffering', 'no');
    response.flushHeaders();
    response.write('retry: 3000\n\n');
    const unsubscribe = this.monitor.subscribe({
      snapshot: (snapshot) => response.write(`event: system\ndata: ${JSON.stringify(snapshot)}\n\n`),
      end: () => response.end(),
    });
    request.on('close', unsubscribe);
  }
}
