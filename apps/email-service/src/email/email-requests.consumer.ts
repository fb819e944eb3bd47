import { Controller } from '@nestjs/common';
import { EventOf } from '@app/contracts';
import { ConsumeContext, HandleEvent } from '@app/messaging';
import { MailSender } from './mail.sender';

@Controller()
export class EmailRequestsConsumer {
  constructor(private readonly sender: MailSender) {}

  /** Runs inside the inbox transaction: the dedupe row commits only after SMTP accepted the message. */
  @HandleEvent('email.requested.v1')
  async onEmailRequested(event: EventOf<'email.requested.v1'>, _context: ConsumeContext): Promise<void> {
    await this.sender.send(event);
  }
}
