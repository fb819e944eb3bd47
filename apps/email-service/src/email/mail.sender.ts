import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import Handlebars from 'handlebars';
import { MailerService } from '@nestjs-modules/mailer';
import { APP_CONFIG, EmailServiceConfig } from '@app/config';
import { EmailRequestedV1, EventOf } from '@app/contracts';
import { errorMessageOf, EventProducer, withSpan } from '@app/messaging';
import { classifySmtpError } from './smtp-errors';

/**
 * Subjects are built in code from the event's values, never by filling placeholders: a username such as
 * `{{constructor}}` stays that text. (The mailer library fills `{{key}}` in a subject whenever a template context is
 * passed, so none is: the body is rendered here and handed over as finished HTML.)
 */
const SUBJECTS: Record<EmailRequestedV1['template'], (data: EmailRequestedV1['data']) => string> = {
  welcome: (data) => `Welcome, ${data.username}!`,
};

const TEMPLATES_DIR = join(__dirname, '..', 'templates');
const compiled = new Map<string, Handlebars.TemplateDelegate>();

/** The email body: a Handlebars template of templates/ with the event's values, HTML-escaped. */
export function renderBody(template: EmailRequestedV1['template'], data: EmailRequestedV1['data']): string {
  let render = compiled.get(template);
  if (!render) {
    render = Handlebars.compile(readFileSync(join(TEMPLATES_DIR, `${template}.hbs`), 'utf8'), { strict: true });
    compiled.set(template, render);
  }
  return render(data);
}

export function subjectOf(template: EmailRequestedV1['template'], data: EmailRequestedV1['data']): string {
  return SUBJECTS[template](data);
}

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
          subject: subjectOf(template, data),
          html: renderBody(template, data),
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
