import { createServer, connect, Server, Socket } from 'node:net';

export interface KafkaProxyOptions {
  listenPort: number;
  targetPort: number;
  host?: string;
}

export interface KafkaProxyStats {
  /** Connections proxied to the broker since start (refused ones not counted). */
  connections: number;
  /** Requests seen, by api key. */
  requests: Record<number, number>;
  /** Responses swallowed by dropResponses(). */
  droppedResponses: number;
}

/** Splits a byte stream into Kafka frames (4-byte big-endian size, then that many bytes). */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Adds a chunk; returns every frame it completes, each with its size prefix. */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.buffered < 4) break;
      if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks)];
      const size = this.chunks[0].readInt32BE(0);
      if (size < 0) throw new Error(`invalid Kafka frame size ${size}`);
      const needed = 4 + size;
      if (this.buffered < needed) break;
      // Joins chunks once per complete frame, not on every chunk: a large fetch response arrives in many pieces.
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
      frames.push(all.subarray(0, needed));
      const rest = all.subarray(needed);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
    }
    return frames;
  }
}

/** One client connection and its connection to the broker. */
class Link {
  /** Api key of each request still waiting for its response, by correlation id. */
  readonly pending = new Map<number, number>();
  /** Responses held back by delayResponses(), oldest first, so order on the connection is kept. */
  private held: { frame: Buffer; at: number }[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
  ) {}

  hold(frame: Buffer, ms: number): void {
    this.held.push({ frame, at: Date.now() + ms });
    this.schedule();
  }

  /** Forwards a response now, unless earlier ones are still held: it must not overtake them. */
  forward(frame: Buffer): void {
    if (this.held.length > 0) this.hold(frame, 0);
    else this.client.write(frame);
  }

  /** Forwards every held response now. */
  release(): void {
    for (const { frame } of this.held.splice(0)) this.client.write(frame);
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  destroy(): void {
    clearTimeout(this.timer);
    this.held = [];
    this.client.destroy();
    this.upstream.destroy();
  }

  private schedule(): void {
    if (this.timer || this.held.length === 0) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        while (this.held.length > 0 && this.held[0].at <= Date.now()) this.client.write(this.held.shift()!.frame);
        this.schedule();
      },
      Math.max(0, this.held[0].at - Date.now()),
    );
  }
}

/**
 * A TCP proxy between Kafka clients and the broker's PROXIED listener (scripts/kafka.sh: the broker listens on
 * PORT+2 and advertises PORT+3, where this proxy listens), so a test can inject network faults: swallow or delay
 * responses, cut connections, refuse new ones.
 *
 * Requests pass through byte for byte as they arrive; the proxy only reads each request header on the side to
 * learn api key and correlation id. Responses are forwarded frame by frame, matched to their request by
 * correlation id. Produce with acks=0 (no response) is not tracked; kafkajs never sends it here.
 */
export class KafkaProxy {
  readonly stats: KafkaProxyStats = { connections: 0, requests: {}, droppedResponses: 0 };
  private readonly host: string;
  private readonly links = new Set<Link>();
  private server?: Server;
  private dropped = new Set<number>();
  private delayMs = 0;
  private refusing = false;

  constructor(private readonly options: KafkaProxyOptions) {
    this.host = options.host ?? '127.0.0.1';
  }

  /** Connections open right now. */
  get openConnections(): number {
    return this.links.size;
  }

  async start(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.listenPort, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.cutConnections();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * From now on the responses to requests with these api keys (default Produce) are swallowed: the broker did the
   * work, the client never hears back. Decided when the response arrives. Until heal().
   */
  dropResponses(apiKeys: number[] = [0]): void {
    this.dropped = new Set(apiKeys);
  }

  /** Holds every response back this long before forwarding it (0 = off). */
  delayResponses(ms: number): void {
    this.delayMs = ms;
  }

  /** Ends every fault: responses flow again, held ones are released now, connections are accepted. */
  heal(): void {
    this.dropped = new Set();
    this.delayMs = 0;
    this.refusing = false;
    for (const link of this.links) link.release();
  }

  /** Destroys every open connection, both sides, as a network cut does; new connections are accepted. */
  cutConnections(): void {
    for (const link of this.links) link.destroy();
    this.links.clear();
  }

  /** While on, new connections are accepted and closed at once; open ones are cut now. */
  refuse(on: boolean): void {
    this.refusing = on;
    if (on) this.cutConnections();
  }

  private accept(client: Socket): void {
    // Errors such as ECONNRESET end the link; without a listener they would crash the test process.
    client.on('error', () => undefined);
    if (this.refusing) {
      client.destroy();
      return;
    }
    this.stats.connections += 1;
    const upstream = connect(this.options.targetPort, this.host);
    upstream.on('error', () => undefined);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const link = new Link(client, upstream);
    this.links.add(link);
    const close = () => {
      this.links.delete(link);
      link.destroy();
    };
    client.on('close', close);
    upstream.on('close', close);

    const requests = new FrameReader();
    client.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = requests.push(chunk);
      } catch {
        return close(); // not Kafka: give up on this connection
      }
      for (const frame of frames) {
        // Header: size int32, api_key int16, api_version int16, correlation_id int32.
        if (frame.length < 12) continue;
        const apiKey = frame.readInt16BE(4);
        link.pending.set(frame.readInt32BE(8), apiKey);
        this.stats.requests[apiKey] = (this.stats.requests[apiKey] ?? 0) + 1;
      }
      // Writes before the broker connection is up are buffered by the socket.
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });

    const responses = new FrameReader();
    upstream.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = responses.push(chunk);
      } catch {
        return close();
      }
      for (const frame of frames) this.respond(link, frame);
      if (client.writableNeedDrain) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    });
  }

  private respond(link: Link, frame: Buffer): void {
    // Header: size int32, correlation_id int32.
    const correlationId = frame.length >= 8 ? frame.readInt32BE(4) : undefined;
    const apiKey = correlationId === undefined ? undefined : link.pending.get(correlationId);
    if (correlationId !== undefined) link.pending.delete(correlationId);
    if (apiKey !== undefined && this.dropped.has(apiKey)) {
      this.stats.droppedResponses += 1;
    } else if (this.delayMs > 0) {
      link.hold(frame, this.delayMs);
    } else {
      link.forward(frame);
    }
  }
}
