import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from './wait';

/** A free TCP port on loopback, for a server the test starts and restarts on the same address. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A redis-server of the test's own, on its own port, that the test can kill and start again. By default it persists
 * every write (append-only file, fsync always), as a production Redis with persistence does: what was cached before a
 * crash is there again after it — stale entries included, unless something removed them. With `persistence: 'rdb'`
 * it keeps only the snapshots the test takes (SAVE), as a Redis with RDB alone does: a crash loses every write made
 * since the last one.
 */
export class TestRedis {
  constructor(private readonly options: { persistence?: 'aof' | 'rdb' } = {}) {}

  private child?: ChildProcess;
  private exited?: Promise<void>;
  port = 0;
  private readonly dir = join(__dirname, '..', '..', '.run', 'test-redis', `${process.pid}-${Date.now()}`);

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.port ||= await freePort();
    mkdirSync(this.dir, { recursive: true });
    const child = spawn(
      'redis-server',
      [
        ...['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir],
        ...(this.options.persistence === 'rdb'
          ? ['--save', '', '--appendonly', 'no']
          : ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always']),
      ],
      { stdio: 'ignore' },
    );
    this.exited = new Promise((resolve) => child.on('exit', () => resolve()));
    this.child = child;
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await waitFor('the test Redis to answer', async () => {
        try {
          if (probe.status !== 'ready') await probe.connect();
          return (await probe.ping()) === 'PONG';
        } catch {
          probe.disconnect();
          return false;
        }
      });
    } finally {
      probe.disconnect();
    }
    return this;
  }

  /** Kills the server (SIGKILL by default: a crash, not a shutdown). */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.child?.kill(signal);
    await this.exited;
    this.child = undefined;
  }

  /** A client of its own for the test to look inside. */
  client(): Redis {
    return new Redis(this.url, { maxRetriesPerRequest: 1 });
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
