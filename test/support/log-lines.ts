import { Writable } from 'node:stream';
import { createLogger } from '@app/telemetry';
import type { Logger } from 'pino';

/** One JSON line of an app's log, as far as the tests read it. */
export interface LogLine {
  message: string;
  level: string;
  req?: { method?: string; url?: string };
  res?: { statusCode?: number; aborted?: boolean };
  err?: { type?: string; message?: string };
}

/** The app's own JSON logger (startApp's third argument) at info, writing into `lines`: what an operator reads. */
export function memoryLogger(app: string): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: createLogger({ app, level: 'log', format: 'json', destination }), lines };
}
