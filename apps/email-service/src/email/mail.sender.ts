import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import Handlebars from 'handlebars';
import { ISendMailOptions, MailerService } from '@nestjs-modules/mailer';
import type { EntityManager } from 'typeorm';
import { APP_CONFIG, EmailServiceConfig } from '@app/config';
import { EmailRequestedV1, EventOf } from '@app/contracts';
import { confirmTransaction } from '@app/inbox';
import { errorMessageOf, EventProducer, withSpan } from '@app/messaging';
import { Handover, HANDOVER_FIELD } from './handover';
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

  /**
   * Sends inside the inbox transaction: the message is handed over (its end-of-data dot written) only if the
   * transaction was alive just before and the send's deadline has not passed; `signal` (transaction lost, shutdown)
   * and the deadline cut the dialogue before that point, never after it.
   */
  async send(
    event: EventOf<'email.requested.v1'>,
    inbox: { transaction?: EntityManager; signal: AbortSignal },
  ): Promise<void> {
    const { to, template, data } = event.data;
    const messageId = messageIdFor(event.id, this.config.SMTP_FROM);
    const { transaction } = inbox;
    const handover = new Handover({
      deadlineAt: Date.now() + this.config.SMTP_SEND_DEADLINE_MS,
      deadlineMs: this.config.SMTP_SEND_DEADLINE_MS,
      signal: inbox.signal,
      confirm: transaction
        ? () => confirmTransaction(transaction, this.config.DATABASE_IDLE_TRANSACTION_TIMEOUT_MS)
        : () => Promise.resolve(() => true),
    });
    const mail: ISendMailOptions & { [HANDOVER_FIELD]: Handover } = {
      to,
      subject: subjectOf(template, data),
      html: renderBody(template, data),
      messageId,
      headers: { 'X-Event-Id': event.id, 'X-Correlation-Id': event.correlationid },
      signal: handover.signal,
      [HANDOVER_FIELD]: handover,
    };
    try {
      await withSpan('smtp send', { 'email.template': template, 'email.message_id': messageId }, () =>
        this.mailer.sendMail(mail),
      );
    } catch (error) {
      throw (handover.cutReason as Error | undefined) ?? classifySmtpError(error);
    } finally {
      handover.dispose();
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
