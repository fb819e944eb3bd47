/** The SMTP servers the benchmarks measure against, on loopback. */
import { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface BenchSmtp {
  url: string;
  /** Every message accepted: its recipient and when (`at`: performance.now(); `epochMs`: Date.now()). */
  accepted: { to: string; at: number; epochMs: number }[];
  close: () => Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * An SMTP server that accepts each message `delayMs` after its data ended (0: at once). With `oneAtATime` it is a
 * server of known capacity: messages are accepted one after another, each `delayMs` after the previous one was (or
 * after its own data ended, when the server was idle).
 */
export async function benchSmtp(delayMs = 0, { oneAtATime = false } = {}): Promise<BenchSmtp> {
  const accepted: BenchSmtp['accepted'] = [];
  let queue = Promise.resolve();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    disableReverseLookup: true,
    onData: (stream, session, callback) => {
      stream.resume();
      stream.on('end', () => {
        const accept = () => {
          const at = performance.now();
          const epochMs = Date.now();
          for (const rcpt of session.envelope.rcptTo) accepted.push({ to: rcpt.address, at, epochMs });
          callback();
        };
        if (delayMs <= 0) accept();
        else if (oneAtATime) queue = queue.then(() => sleep(delayMs).then(accept));
        else void sleep(delayMs).then(accept);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    accepted,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
