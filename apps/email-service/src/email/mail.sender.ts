import { Inject, Injectable, Logger } from '@nestjs/common';
import { MailerService } from '@nestjs-modules/mailer';
import { APP_CONFIG, EmailServiceConfig } from '@app/config';
import { EmailRequestedV1, EventOf } from '@app/contracts';
import { errorMessageOf, EventProducer, withSpan } from '@app/messaging';
import { classifySmtpError } from './smtp-errors';

const SUBJECTS: Record<EmailRequestedV1['template'], (data: EmailRequestedV1['data']) => string> = {
  welcome: (data) => `Welcome, ${data.username}!`,
};

/** The domain of SMTP_FROM ("Name <a@b.c>" or "a@b.c"), used for Message-IDs. */
export function senderDomain(from: string): string {
  const address = /<([^>]+)>/.exec(from)?.[1] ?? from;
  return address.split('@')[1]?.trim() || 'localhost';
}

/** Message-ID derived from the event id: a resend in the ambiguous window carries the same id and is recognisable. */
export function messageIdFor(eventId: string, from: string): string {
  return `<${eventId}@${senderDomain(from)}>`;
}

@Injectable()
export class MailSender {
  private readonly logger = new Logger(MailSender.name);

  constructor(
    private readonly mailer: MailerService,
    @Inject(APP_CONFIG) private readonly config: EmailServiceConfig,
    private readonly producer: EventProducer,
  ) {}

  async send(event: EventOf<'email.requested.v1'>): Promise<void> {
    const { to, template, data } = event.data;
    const messageId = messageIdFor(event.id, this.config.SMTP_FROM);
    try {
      await withSpan('smtp send', { 'email.template': template, 'email.message_id': messageId }, () =>
        this.mailer.sendMail({
          to,
          subject: SUBJECTS[template](data),
          template,
          context: data,
          messageId,
          headers: { 'X-Event-Id': event.id, 'X-Correlation-Id': event.correlationid },
        }),
      );
    } catch (error) {
      throw classifySmtpError(error);
    }
    this.logger.log(`sent ${template} email ${messageId} for event ${event.id}`);
    // A notice for live views, not awaited: the inbox transaction commits without waiting on the broker (a slow one
    // must not hold it past its idle timeout, which would send the email again). Best effort: lost, it is only late.
    void this.producer
      .publish(
        'email.sent.v1',
        { userId: event.data.userId, template, messageId, requestId: event.id },
        { key: event.data.userId, source: 'email-service', correlationId: event.correlationid },
      )
      .catch((error: unknown) =>
        this.logger.warn(`email.sent notice for event ${event.id} not published: ${errorMessageOf(error)}`),
      );
  }
}
