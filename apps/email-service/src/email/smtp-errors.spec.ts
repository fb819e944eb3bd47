import { classifyError } from '@app/messaging';
import { classifySmtpError, MailRejectedError, MailServerUnavailableError } from './smtp-errors';

describe('SMTP error classification', () => {
  it.each([
    ['a 550 mailbox unavailable', { responseCode: 550, message: 'No such user' }, MailRejectedError, 'permanent'],
    ['a 451 try again later', { responseCode: 451, message: 'Try later' }, MailServerUnavailableError, 'retriable'],
    [
      'a refused connection',
      { code: 'ECONNECTION', message: 'connect ECONNREFUSED' },
      MailServerUnavailableError,
      'retriable',
    ],
    [
      'a 535 authentication failure',
      { responseCode: 535, message: 'Auth failed' },
      MailServerUnavailableError,
      'retriable',
    ],
    [
      'a 530 must issue STARTTLS',
      { responseCode: 530, message: 'STARTTLS first' },
      MailServerUnavailableError,
      'retriable',
    ],
  ])('%s', (_name, error, type, kind) => {
    const classified = classifySmtpError(Object.assign(new Error(error.message), error));
    expect(classified).toBeInstanceOf(type);
    expect(classifyError(classified)).toBe(kind);
  });
});
