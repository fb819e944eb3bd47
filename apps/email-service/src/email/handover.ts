import { pipeline, Readable, Transform, TransformCallback } from 'node:stream';
import { InboxTransactionLostError } from '@app/inbox';
import { RetriableError } from '@app/messaging';

/** The send's deadline passed before the message was handed over: nothing was delivered. */
export class SmtpSendDeadlineError extends RetriableError {
  override readonly name = 'SmtpSendDeadlineError';
}

export interface HandoverOptions {
  /** Wall-clock end of the send (epoch ms); past it the dialogue is cut if the message is not handed over yet. */
  deadlineAt: number;
  deadlineMs: number;
  /** Aborted when the inbox transaction is lost or the app shuts down. */
  signal: AbortSignal;
  /** Proves the transaction alive; resolves to a check that must still hold when the end-of-data dot goes out. */
  confirm: () => Promise<() => boolean>;
}

/**
 * One send's hand-over: the moment the end-of-data dot may be written, after which the server may accept the
 * message. Before it, the deadline, a lost transaction or a shutdown cut the dialogue (`signal` aborts the nodemailer
 * send, which closes its connection: the server drops a message without its dot). After it, nothing cuts: the
 * server's reply alone says whether it was accepted, and it is awaited for at most SMTP_TIMEOUT_MS.
 */
export class Handover {
  private readonly controller = new AbortController();
  private handedOver = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort = () => this.cut(this.options.signal.reason);

  constructor(private readonly options: HandoverOptions) {
    this.timer = setTimeout(
      () => this.cut(this.deadlineError()),
      Math.min(Math.max(0, options.deadlineAt - Date.now()), 2 ** 31 - 1),
    );
    if (options.signal.aborted) this.cut(options.signal.reason);
    else options.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** For nodemailer's `signal` option. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Why the send was cut, if it was. */
  get cutReason(): unknown {
    return this.controller.signal.aborted ? (this.controller.signal.reason as unknown) : undefined;
  }

  /** Runs when the whole message has passed to the connection and only the dot is left; throws to withhold it. */
  async beforeDot(): Promise<void> {
    let stillAlive: () => boolean;
    try {
      stillAlive = await this.options.confirm();
    } catch (error) {
      this.cut(error);
      throw error;
    }
    // From here to the dot nothing waits on I/O: a freeze between the statement and this line is caught by the clock.
    if (this.controller.signal.aborted) throw this.controller.signal.reason;
    const refusal =
      Date.now() >= this.options.deadlineAt
        ? this.deadlineError()
        : stillAlive()
          ? undefined
          : new InboxTransactionLostError('the inbox transaction may have ended while the process stood still');
    if (refusal) {
      this.cut(refusal);
      throw refusal;
    }
    this.handedOver = true;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.options.signal.removeEventListener('abort', this.onAbort);
  }

  private cut(reason: unknown): void {
    if (!this.handedOver && !this.controller.signal.aborted) this.controller.abort(reason);
  }

  private deadlineError(): SmtpSendDeadlineError {
    return new SmtpSendDeadlineError(
      `the SMTP send took longer than SMTP_SEND_DEADLINE_MS (${this.options.deadlineMs} ms) before the message was handed over`,
    );
  }
}

/**
 * Passes the message through and holds back its end until the connection reads it (the server said "354", go
 * ahead) and `beforeDot` passed. nodemailer writes the end-of-data dot only after its message stream ended.
 */
class HandoverGate extends Transform {
  // A Transform's readable side is resumed only by the consumer's pipe, in the DATA phase.
  private readonly reading = new Promise<void>((resolve) => this.once('resume', resolve));

  constructor(private readonly handover: Handover) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.reading
      .then(() => this.handover.beforeDot())
      .then(
        () => done(),
        (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
      );
  }
}

/** The field of nodemailer's message data that carries a send's Handover to the plugin. */
export const HANDOVER_FIELD = 'handover';

interface PluginMail {
  data: Record<string, unknown>;
  message: { processFunc(fn: (input: Readable) => Readable): void };
}

/**
 * nodemailer 'stream' plugin: a message sent with a Handover gets the gate as its last stage (a process function
 * runs after all transforms; this transport signs nothing, so no later stage reads ahead of the connection).
 */
export function handoverPlugin(mail: PluginMail, callback: (error?: Error | null) => void): void {
  const handover = mail.data[HANDOVER_FIELD];
  if (handover instanceof Handover) {
    mail.message.processFunc((input) => pipeline(input, new HandoverGate(handover), () => undefined));
  }
  callback();
}
