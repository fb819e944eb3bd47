import { randomUUID } from 'node:crypto';
import { ALL_TOPICS } from '@app/contracts';
import { ensureTopics } from '@app/messaging';
import { ChildApp } from './support/child-app';
import { testKafka } from './support/broker';
import { startGroupAtEnd } from './support/kafka';
import { OtlpReceiver, ReceivedSpan } from './support/otlp';
import { freePort } from './support/redis';
import { SmtpCatcher } from './support/smtp';
import { waitFor } from './support/wait';

const SERVER = 2;
const PRODUCER = 4;
const CONSUMER = 5;

/**
 * One registration is one trace. users-api and email-service run as built processes configured only by the
 * standard OTEL_* variables (OTLP over HTTP with the JSON encoding) and export to a receiver in the test: the HTTP
 * request, the outbox write (the context is kept in the row's headers), the relay's send, the consumer and the SMTP
 * send must share one trace id, each the child of the one before.
 */
describe('tracing: a registration is one trace across users-api, the relay and email-service', () => {
  const receiver = new OtlpReceiver();
  const smtp = new SmtpCatcher();
  const group = `email-traced-${randomUUID().slice(0, 8)}`;
  const children: ChildApp[] = [];
  let apiUrl = '';

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    await startGroupAtEnd(group, 'emails');
    await smtp.start();
    await receiver.start();
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '200',
    };
    const port = await freePort();
    apiUrl = `http://127.0.0.1:${port}`;
    const api = new ChildApp('users-api', `traced-users-api-${group}`, { ...otel, PORT: String(port) });
    const mailer = new ChildApp('email-service', `traced-email-${group}`, {
      ...otel,
      SMTP_URL: smtp.url,
      EMAIL_CONSUMER_GROUP: group,
    });
    children.push(api, mailer);
    await api.start('listening on');
    await mailer.start('listening on');
  });

  afterAll(async () => {
    for (const child of children) await child.stop('SIGKILL');
    await smtp.stop();
    await receiver.stop();
  });

  it('links the HTTP request, the outbox relay send, the consumer and the SMTP send by parent and child', async () => {
    const name = `traced${randomUUID().slice(0, 8)}`;
    const email = `${name}@example.com`;
    const response = await fetch(`${apiUrl}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, username: name, password: 'a long password 1' }),
    });
    expect(response.status).toBe(201);
    await waitFor('the welcome email', () => smtp.to(email).length > 0);

    const smtpSpan = await waitFor('the SMTP span', () =>
      receiver.spans.find((s) => s.name === 'smtp send' && s.service === 'email-service'),
    );
    const trace = () => receiver.spans.filter((s) => s.traceId === smtpSpan.traceId);
    const parentOf = (span: ReadableSpanLike) => trace().find((s) => s.spanId === span.parentSpanId);
    type ReadableSpanLike = ReceivedSpan;

    // Spans end child first and are exported in batches: each parent may arrive a little after its child.
    const consume = await waitFor('the consumer span', () => parentOf(smtpSpan));
    expect(consume).toMatchObject({ name: 'process emails', kind: CONSUMER, service: 'email-service' });
    expect(consume.attributes['messaging.consumer.group.name']).toBe(group);
    const send = await waitFor('the relay send span', () => parentOf(consume));
    expect(send).toMatchObject({ name: 'send emails', kind: PRODUCER, service: 'users-api' });
    // The relay sent it in the background, yet its span hangs under the request that wrote the outbox row.
    const server = await waitFor('the request span above the send', () => {
      const ancestors: ReceivedSpan[] = [];
      for (let span = parentOf(send); span; span = parentOf(span)) ancestors.push(span);
      return ancestors.find((s) => s.kind === SERVER);
    });
    expect(server).toMatchObject({ service: 'users-api' });
    expect(server.name).toMatch(/POST/);
    expect(server.parentSpanId).toBeUndefined();
    // The database work of the request and the user's own event are in the same trace.
    await waitFor(
      'the users event and SQL in the trace',
      () =>
        trace().some((s) => s.name === 'send users' && s.kind === PRODUCER) &&
        trace().some(
          (s) =>
            s.service === 'users-api' &&
            String(s.attributes['db.system.name'] ?? s.attributes['db.system'] ?? '') === 'postgresql',
        ),
    );
  });
});
