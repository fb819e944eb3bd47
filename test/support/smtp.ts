import { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer, SMTPServerSession } from 'smtp-server';

export interface ReceivedMail {
  to: string[];
  from: string;
  subject: string;
  messageId: string;
  html: string;
  text: string;
  headers: Map<string, unknown>;
}

/** A message the server accepted: its envelope recipient and when (`at`: performance.now(); `epochMs`: Date.now()). */
export interface AcceptedMail {
  to: string;
  at: number;
  epochMs: number;
}

export interface SmtpCatcherOptions {
  /** Every message is answered this long after its data ended (delayNext adds one-off delays on top of none). */
  delayMs?: number;
  /**
   * A server of known capacity: messages are accepted one after another, each `delayMs` after the previous one was
   * (or after its own data ended, when the server was idle).
   */
  oneAtATime?: boolean;
  /** Parse each message into `received` (tests); off, only `accepted` is kept (benchmarks: no parsing cost). */
  parse?: boolean;
}

/**
 * A real SMTP server on loopback, for the tests and the benchmarks. `failNext(n, code)` makes the next n messages fail
 * at DATA with an SMTP reply code; `stop()`/`start()` take it down and bring it back on the same port.
 */
export class SmtpCatcher {
  readonly received: ReceivedMail[] = [];
  /** Every message accepted, in the order the server answered them. */
  readonly accepted: AcceptedMail[] = [];
  /** Messages whose data arrived and whose reply is still held back (see delayNext). */
  receiving = 0;
  port = 0;
  private server?: SMTPServer;
  private failures: { remaining: number; code: number } = { remaining: 0, code: 451 };
  private delays: number[] = [];
  private recipientHolds: { reached: () => void; released: Promise<void> }[] = [];
  private queue = Promise.resolve();

  constructor(private readonly options: SmtpCatcherOptions = {}) {}

  async start(port = this.port): Promise<this> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      disableReverseLookup: true,
      onRcptTo: (_address, _session, callback) => {
        const hold = this.recipientHolds.shift();
        if (!hold) return callback();
        hold.reached();
        void hold.released.then(() => callback());
      },
      onData: (stream, session: SMTPServerSession, callback) => {
        const chunks: Buffer[] = [];
        const parse = this.options.parse ?? true;
        stream.on('data', (chunk: Buffer) => {
          if (parse) chunks.push(chunk);
        });
        stream.on('end', () => {
          this.receiving += 1;
          void this.afterDelay().then(() => {
            this.receiving -= 1;
            finish();
          });
        });
        const accept = () => {
          const [at, epochMs] = [performance.now(), Date.now()];
          for (const rcpt of session.envelope.rcptTo) this.accepted.push({ to: rcpt.address, at, epochMs });
          callback();
        };
        const finish = () => {
          if (this.failures.remaining > 0) {
            this.failures.remaining -= 1;
            const error = Object.assign(new Error('Try again later'), { responseCode: this.failures.code });
            callback(error);
            return;
          }
          if (!parse) return accept();
          simpleParser(Buffer.concat(chunks))
            .then((mail) => {
              const to = (Array.isArray(mail.to) ? mail.to : mail.to ? [mail.to] : []).flatMap((a) =>
                a.value.map((v) => v.address ?? ''),
              );
              this.received.push({
                to,
                from: mail.from?.text ?? '',
                subject: mail.subject ?? '',
                messageId: mail.messageId ?? '',
                html: typeof mail.html === 'string' ? mail.html : '',
                text: mail.text ?? '',
                headers: mail.headers,
              });
              accept();
            })
            .catch((error: Error) => callback(error));
        };
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The next message is answered only after `ms` (Infinity: never): a slow mail server, a long-running handler. */
  delayNext(ms: number): void {
    this.delays.push(ms);
  }

  private afterDelay(): Promise<void> {
    const ms = this.delays.shift() ?? this.options.delayMs ?? 0;
    if (ms === Infinity) return new Promise(() => undefined);
    const wait = () => (ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms)) : Promise.resolve());
    if (!this.options.oneAtATime) return wait();
    this.queue = this.queue.then(wait);
    return this.queue;
  }

  /**
   * The next RCPT TO is answered only after `release()`: the client is mid-dialogue, waiting, when `reached` says the
   * command arrived. Messages before it are not held.
   */
  holdNextRecipient(): { reached: () => boolean; release: () => void } {
    let reached = false;
    let release = () => undefined as void;
    const released = new Promise<void>((resolve) => (release = resolve));
    this.recipientHolds.push({ reached: () => (reached = true), released });
    return { reached: () => reached, release: () => release() };
  }

  failNext(count: number, code = 451): void {
    this.failures = { remaining: count, code };
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  to(address: string): ReceivedMail[] {
    return this.received.filter((mail) => mail.to.includes(address));
  }
}
