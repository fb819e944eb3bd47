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
 * What an operator reads: traces and logs. One registration is one trace. users-api and email-service run as built processes configured only by the
 * standard OTEL_* variables (OTLP over HTTP with the JSON encoding) and export to a receiver in the test: the HTTP
 * request, the outbox write (the context is kept in the row's headers), the relay's send, the consumer and the SMTP
 * send must share one trace id, each the child of the one before.
 */
describe('observability: one registration seen in traces and in logs across users-api and email-service', () => {
  const receiver = new OtlpReceiver();
  const smtp = new SmtpCatcher();
  const group = `email-traced-${randomUUID().slice(0, 8)}`;
  const children: ChildApp[] = [];
  let apiUrl = '';
  let apps: { api: ChildApp; mailer: ChildApp };

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    await startGroupAtEnd(group, 'emails');
    await smtp.start();
    await receiver.start();
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      // As in production, and as chatty as it gets: a secret that reaches any line shows up here.
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'verbose',
      // As the image and `npm start` run them: Node's own notice about kafkajs's negative timer is not a log line.
      NODE_OPTIONS: '--disable-warning=TimeoutNegativeWarning',
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
    apps = { api, mailer };
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

  it('writes one JSON object per line, with the trace, correlation and event ids, and no password or address', async () => {
    const name = `logged${randomUUID().slice(0, 8)}`;
    const email = `${name}@example.com`;
    const password = `pw-${randomUUID()}`;
    const rejected = `no-${randomUUID().slice(0, 7)}`; // 11 characters: too short, answered 400
    const correlationId = `log-test-${randomUUID()}`;
    const post = (body: string, headers: Record<string, string> = {}) =>
      fetch(`${apiUrl}/users`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

    const created = await post(JSON.stringify({ email, username: name, password }), {
      'x-correlation-id': correlationId,
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('x-correlation-id')).toBe(correlationId);
    // The ways a password reaches the API without being stored: a duplicate, a too-short one, broken JSON.
    expect((await post(JSON.stringify({ email, username: name, password }))).status).toBe(409);
    expect((await post(JSON.stringify({ email: `x${email}`, username: `x${name}`, password: rejected }))).status).toBe(
      400,
    );
    expect((await post(`{"email":"${email}","password":"${password}`)).status).toBe(400);
    await waitFor('the welcome email', () => smtp.to(email).length > 0);

    type Line = Record<string, unknown>;
    const linesOf = (child: ChildApp): Line[] =>
      child.printed
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => {
          try {
            return JSON.parse(line) as Line;
          } catch {
            throw new Error(`not a JSON log line: ${line}`);
          }
        });
    const sent = await waitFor('the email-service line for the sent email', () =>
      linesOf(apps.mailer).find(
        (line) => line.correlationId === correlationId && /sent welcome/.test(String(line.message)),
      ),
    );
    for (const line of [...linesOf(apps.api), ...linesOf(apps.mailer)]) {
      expect(line).toEqual(
        expect.objectContaining({
          time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
          level: expect.stringMatching(/^(trace|debug|info|warn|error|fatal)$/),
          app: expect.stringMatching(/^(users-api|email-service)$/),
          message: expect.any(String),
        }),
      );
    }
    // The consumer's line names the event it handled and the trace the registration started.
    expect(sent).toMatchObject({ app: 'email-service', eventType: 'email.requested.v1', eventId: expect.any(String) });
    const registered = linesOf(apps.api).find(
      (line) => line.correlationId === correlationId && /registered user/.test(String(line.message)),
    );
    expect(registered?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(sent.traceId).toBe(registered?.traceId);
    // The request line has the same correlation id the response echoed.
    expect(linesOf(apps.api)).toContainEqual(
      expect.objectContaining({ correlationId, message: expect.stringMatching(/^POST \/users 201/) }),
    );

    const printed = apps.api.printed + apps.mailer.printed;
    for (const secret of [password, rejected, email, '$argon2']) expect(printed).not.toContain(secret);
  });
});
