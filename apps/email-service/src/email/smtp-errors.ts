import { PermanentError, RetriableError } from '@app/messaging';

/** SMTP replies that say the message itself can never be delivered (RFC 5321 5yz on the envelope or content). */
export class MailRejectedError extends PermanentError {
  override readonly name = 'MailRejectedError';
}

/** The server is unreachable or asked us to try later (4yz, connection, timeout, auth trouble fixed by config). */
export class MailServerUnavailableError extends RetriableError {
  override readonly name = 'MailServerUnavailableError';
}

interface NodemailerError {
  code?: string;
  responseCode?: number;
  message?: string;
}

/** Auth and "TLS required" replies are 5yz but fixed by configuration, not by dropping the message. */
const CONFIGURATION_REPLIES = new Set([530, 534, 535, 538]);

export function classifySmtpError(error: unknown): Error {
  const e = (error ?? {}) as NodemailerError;
  const reply = e.responseCode;
  const message = e.message ?? String(error);
  if (typeof reply === 'number' && reply >= 500 && reply < 600 && !CONFIGURATION_REPLIES.has(reply)) {
    return new MailRejectedError(`SMTP ${reply}: ${message}`, { cause: error });
  }
  return new MailServerUnavailableError(
    `${typeof reply === 'number' ? `SMTP ${reply}` : (e.code ?? 'SMTP error')}: ${message}`,
    { cause: error },
  );
}
