import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { ChildApp } from './support/child-app';
import { freshDatabase, KafkaInstance } from './support/cluster';
import { SmtpCatcher } from './support/smtp';
import { waitFor } from './support/wait';

/**
 * A broker whose only client listener is SASL_SSL (SCRAM-SHA-512, a CA and a broker certificate made with openssl
 * for this run, scripts/kafka.sh --secure). The apps reach it with the documented KAFKA_SSL* and KAFKA_SASL_*
 * variables alone; settings that cannot work stop the boot once, with the setting named.
 */
describe('secured broker (SASL_SSL, SCRAM-SHA-512)', () => {
  const username = 'kafka-nest';
  const password = randomBytes(18).toString('base64url');
  const broker = new KafkaInstance('secure', 29700, 1, ['--secure'], {
    KAFKA_SASL_USERNAME: username,
    KAFKA_SASL_PASSWORD: password,
  });
  const ca = join(__dirname, '..', '.run', 'kafka-secure', 'tls', 'ca.pem');
  const smtp = new SmtpCatcher();
  const children: ChildApp[] = [];
  let databaseUrl = '';

  const secured = (overrides: Record<string, string> = {}) => ({
    KAFKA_BROKERS: broker.brokers,
    KAFKA_SSL: 'true',
    KAFKA_SSL_CA_FILE: ca,
    KAFKA_SASL_MECHANISM: 'scram-sha-512',
    KAFKA_SASL_USERNAME: username,
    KAFKA_SASL_PASSWORD: password,
    DATABASE_URL: databaseUrl,
    ...overrides,
  });

  function child(app: string, label: string, env: Record<string, string>): ChildApp {
    const started = new ChildApp(app, `secure-${label}-${randomUUID().slice(0, 6)}`, env);
    children.push(started);
    return started;
  }

  /** Boots an app that must refuse to start; resolves with what it printed, once it exited. */
  async function refusedBoot(app: string, label: string, env: Record<string, string>): Promise<ChildApp> {
    const refused = child(app, label, env);
    await expect(refused.start('listening on', 30_000)).rejects.toThrow(/exited/);
    return refused;
  }

  beforeAll(async () => {
    await broker.start();
    databaseUrl = await freshDatabase('kafka_nest_test_secured');
    await smtp.start();
  }, 180_000);

  afterAll(async () => {
    for (const app of children) await app.stop('SIGKILL').catch(() => undefined);
    await smtp.stop();
    await broker.destroy();
  });

  it('registration → welcome email runs through the SASL_SSL listener', async () => {
    const api = child('users-api', 'api', secured({ PORT: '0' }));
    const mailer = child('email-service', 'mailer', secured({ SMTP_URL: smtp.url }));
    await Promise.all([api.start('listening on', 90_000), mailer.start('consuming as group', 90_000)]);
    const url = /listening on (http:\/\/\S+)/.exec(api.printed)![1];

    const name = `tls-${randomUUID().slice(0, 8)}`;
    const response = await fetch(`${url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `${name}@example.com`, username: name, password: 'correct horse battery staple' }),
    });
    expect(response.status).toBe(201);
    const mail = await waitFor(
      'the welcome email',
      () => smtp.received.find((m) => m.to.some((to) => to.includes(name))),
      {
        timeoutMs: 60_000,
      },
    );
    expect(mail.subject).toContain(name);
    // Nothing of the secret reaches the logs.
    expect(api.printed + mailer.printed).not.toContain(password);
  });

  it('a wrong password stops the boot once, naming the credentials, with no retry loop', async () => {
    const refused = await refusedBoot('email-service', 'wrong-password', secured({ KAFKA_SASL_PASSWORD: 'not-it' }));
    expect(refused.exitCode).toBe(1);
    expect(refused.printed).toContain(
      `refused the credentials of user ${username} (SASL scram-sha-512): check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD`,
    );
    expect(refused.printed.match(/failed to start/g)).toHaveLength(1);
    expect(refused.printed).not.toContain('not-it');
  });

  it('plaintext to the TLS port, and TLS without the CA, each stop the boot with the fix named', async () => {
    const plaintext = await refusedBoot(
      'users-api',
      'plaintext',
      secured({ PORT: '0', KAFKA_SSL: 'false', KAFKA_SSL_CA_FILE: '' }),
    );
    expect(plaintext.exitCode).toBe(1);
    expect(plaintext.printed).toContain(
      `Kafka at ${broker.brokers} speaks TLS and this client does not: set KAFKA_SSL=true`,
    );

    const untrusted = await refusedBoot('email-service', 'no-ca', secured({ KAFKA_SSL_CA_FILE: '' }));
    expect(untrusted.printed).toContain('is not trusted (SELF_SIGNED_CERT_IN_CHAIN): set KAFKA_SSL_CA_FILE');
  });
});
