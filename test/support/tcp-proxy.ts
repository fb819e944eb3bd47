import { AddressInfo, connect, createServer, Server, Socket } from 'node:net';

/**
 * A byte-for-byte TCP proxy on an ephemeral port that can go silent: `blackhole(true)` stops forwarding in both
 * directions while every connection stays open, as a network partition looks to both ends (no FIN, no RST, just
 * nothing). Used for connections whose protocol the test does not need to read (a PostgreSQL session).
 * `holdServerLines(ms)` passes on what the server sends one line at a time, each `ms` after the one before: a
 * line-based server (SMTP) that answers slowly yet never falls silent for `ms`.
 */
export class TcpProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private silent = false;
  private lineDelayMs = 0;
  port = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<this> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          this.sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.on('data', (chunk: Buffer) => {
        if (!this.silent) upstream.write(chunk);
      });
      let partial = Buffer.alloc(0);
      let releaseAt = 0;
      upstream.on('data', (chunk: Buffer) => {
        if (this.silent) return;
        if (this.lineDelayMs === 0) {
          client.write(chunk);
          return;
        }
        partial = Buffer.concat([partial, chunk]);
        for (let end = partial.indexOf(0x0a); end !== -1; end = partial.indexOf(0x0a)) {
          const line = partial.subarray(0, end + 1);
          partial = partial.subarray(end + 1);
          releaseAt = Math.max(Date.now(), releaseAt) + this.lineDelayMs;
          setTimeout(() => {
            if (!client.destroyed) client.write(line);
          }, releaseAt - Date.now());
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  /** Silent: bytes in either direction are dropped (not buffered), connections stay open. */
  blackhole(on: boolean): void {
    this.silent = on;
  }

  /** Each line from the server is passed on `ms` after it arrived or after the line before it went, whichever is later. */
  holdServerLines(ms: number): void {
    this.lineDelayMs = ms;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
