import { Controller } from '@nestjs/common';
import type { EmailServiceConfig } from '@app/config';
import { EventOf } from '@app/contracts';
import { ConsumeContext, EventConsumer, HandleEvent } from '@app/messaging';
import { MailSender } from './mail.sender';

/** One durable group (EMAIL_CONSUMER_GROUP) shared by the replicas: each request is mailed once. */
@EventConsumer<EmailServiceConfig>({ group: (config) => config.EMAIL_CONSUMER_GROUP, inbox: 'transactional' })
@Controller()
export class EmailRequestsConsumer {
  constructor(private readonly sender: MailSender) {}

  /** Runs inside the inbox transaction: the dedupe row commits only after SMTP accepted the message. */
  @HandleEvent('email.requested.v1')
  async onEmailRequested(event: EventOf<'email.requested.v1'>, context: ConsumeContext): Promise<void> {
    await this.sender.send(event, { transaction: context.transaction, signal: context.signal });
  }
}
