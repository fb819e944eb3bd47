import { DynamicModule, Module } from '@nestjs/common';
import { MailerModule, MailerOptions } from '@nestjs-modules/mailer';
import { APP_CONFIG, EmailServiceConfig } from '@app/config';
import { DatabaseModule } from '@app/database';
import { InboxRecord } from '@app/inbox';
import { EmailRequestsConsumer } from './email/email-requests.consumer';
import { handoverPlugin } from './email/handover';
import { MailSender } from './email/mail.sender';
import { Inbox1764000000000 } from './migrations/1764000000000-inbox';
import { InboxPruning1764100000000 } from './migrations/1764100000000-inbox-pruning';
import { SCHEMA } from './schema';

/** nodemailer transport options from SMTP_URL plus optional separate credentials. */
export function smtpTransport(config: EmailServiceConfig) {
  const url = new URL(config.SMTP_URL);
  const user = config.SMTP_USER ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const pass = config.SMTP_PASSWORD ?? (url.password ? decodeURIComponent(url.password) : undefined);
  const secure = url.protocol === 'smtps:';
  return {
    // Reuse SMTP connections: a new one per message cost about 100 ms of the 201 → accepted time (npm run bench).
    pool: true,
    host: url.hostname,
    port: Number(url.port || (secure ? 465 : 587)),
    secure,
    // Plain smtp:// still upgrades with STARTTLS when the server offers it.
    ...(user ? { auth: { user, pass: pass ?? '' } } : {}),
    tls: { rejectUnauthorized: config.SMTP_TLS_REJECT_UNAUTHORIZED },
    connectionTimeout: config.SMTP_TIMEOUT_MS,
    greetingTimeout: config.SMTP_TIMEOUT_MS,
    socketTimeout: config.SMTP_TIMEOUT_MS,
  };
}

@Module({})
export class AppModule {
  static register(_config: EmailServiceConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        DatabaseModule.forApp({
          schema: SCHEMA,
          entities: [InboxRecord],
          migrations: [Inbox1764000000000, InboxPruning1764100000000],
          applicationName: 'email-service',
        }),
        MailerModule.forRootAsync({
          imports: [],
          inject: [APP_CONFIG],
          useFactory: (cfg: EmailServiceConfig): MailerOptions => ({
            transport: smtpTransport(cfg),
            defaults: { from: cfg.SMTP_FROM } as MailerOptions['defaults'],
            // Holds each message's end-of-data dot until its inbox transaction is confirmed alive (MailSender).
            plugins: [{ step: 'stream', plugin: handoverPlugin }],
          }),
        }),
      ],
      controllers: [EmailRequestsConsumer],
      providers: [MailSender],
    };
  }
}
