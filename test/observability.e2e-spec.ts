import { randomUUID } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { signUp } from './support/accounts';
import type { ChildApp } from './support/child-app';
import { OtlpReceiver, ReceivedSpan } from './support/otlp';
import { RunningSystem } from './support/system';
import { makeVideo, removeTestFiles } from './support/videos';
import { waitFor } from './support/wait';

const INTERNAL = 1;
const SERVER = 2;
const PRODUCER = 4;
const CONSUMER = 5;

/**
 * What an operator reads: traces and logs. All five apps run as built processes, configured only by the standard
 * OTEL_* variables (OTLP over HTTP with the JSON encoding), and export to a receiver in the test. A registration, a
 * video upload and a post update must each be one trace: every span the flow causes, in every app it crosses, shares
 * the trace id, each the child of the one that caused it — across the outbox (the context is kept in the row's
 * headers) and Kafka (W3C headers). The same run's log lines are read for their fields and for any secret.
 */
describe('observability: registration, video and post flows as traces and logs across the five apps', () => {
  const receiver = new OtlpReceiver();
  const system = new RunningSystem();
  const { smtp, suffix } = system;
  const group = system.groups.email;
  let apiUrl = '';
  let apps: Record<string, ChildApp>;

  // Spans end child first and are exported in batches: each parent may arrive a little after its child.
  const trace = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId);
  const parentOf = (span: ReceivedSpan) =>
    waitFor(`the parent of ${span.service}'s ${span.name}`, () =>
      trace(span.traceId).find((s) => s.spanId === span.parentSpanId),
    );
  /** Waits for the chain of ancestors up to the root: the root is the flow's HTTP request. */
  async function ancestorsOf(span: ReceivedSpan): Promise<ReceivedSpan[]> {
    const chain: ReceivedSpan[] = [];
    for (let at = span; at.parentSpanId;) {
      at = await parentOf(at);
      chain.push(at);
    }
    return chain;
  }
  const describeSpan = (s: ReceivedSpan) => ({ service: s.service, name: s.name, kind: s.kind });

  beforeAll(async () => {
    await receiver.start();
    await system.start({
      shared: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '200',
        // As in production, and as chatty as it gets: a secret that reaches any line shows up here.
        LOG_FORMAT: 'json',
        LOG_LEVEL: 'verbose',
      },
    });
    apiUrl = system.apiUrl;
    apps = system.apps;
  });

  afterAll(async () => {
    await system.stop();
    await receiver.stop();
    removeTestFiles(suffix);
  });

  it('a registration: the request, the outbox relay send, the consumer and the SMTP send by parent and child', async () => {
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
    const [consume, send, ...above] = await ancestorsOf(smtpSpan);
    expect(consume).toMatchObject({ name: 'process emails', kind: CONSUMER, service: 'email-service' });
    expect(consume.attributes['messaging.consumer.group.name']).toBe(group);
    expect(send).toMatchObject({ name: 'send emails', kind: PRODUCER, service: 'users-api' });
    // The relay sent it in the background, yet its span hangs under the request that wrote the outbox row.
    const root = above.at(-1);
    expect(root).toMatchObject({ service: 'users-api', kind: SERVER, name: expect.stringMatching(/^POST/) });
    // The database work of the request and the user's own event are in the same trace.
    await waitFor(
      'the users event and SQL in the trace',
      () =>
        trace(smtpSpan.traceId).some((s) => s.name === 'send users' && s.kind === PRODUCER) &&
        trace(smtpSpan.traceId).some(
          (s) =>
            s.service === 'users-api' &&
            String(s.attributes['db.system.name'] ?? s.attributes['db.system'] ?? '') === 'postgresql',
        ),
    );
  });

  it('a video: the upload, each processing step, and the result consumed by users-api and the notifier', async () => {
    const clip = await makeVideo(`traced-${suffix}`, { seconds: 2 });
    const form = new FormData();
    form.append('file', await openAsBlob(clip.path), clip.name);
    const { auth } = await signUp(apiUrl);
    const response = await fetch(`${apiUrl}/videos`, { method: 'POST', body: form, headers: auth });
    expect(response.status).toBe(202);
    const { id } = (await response.json()) as { id: string };
    await waitFor(
      'the video to complete',
      async () =>
        ((await (await fetch(`${apiUrl}/videos/${id}`, { headers: auth })).json()) as { status: string }).status ===
        'completed',
      { timeoutMs: 90_000 },
    );

    // users-api applying the final result is the end of the flow; follow it back to the upload.
    const isResult = (s: ReceivedSpan, service: string) =>
      s.service === service &&
      s.name === 'process video-processed' &&
      s.attributes['cloudevents.event_type'] === 'video.processed.v1';
    const applied = await waitFor('users-api consuming the result', () =>
      receiver.spans.find((s) => isResult(s, 'users-api')),
    );
    const [resultSend, job, jobSend, ...above] = await ancestorsOf(applied);
    expect([resultSend, job, jobSend].map(describeSpan)).toEqual([
      { service: 'video-processor', name: 'send video-processed', kind: PRODUCER },
      { service: 'video-processor', name: 'process video-processing', kind: CONSUMER },
      { service: 'users-api', name: 'send video-processing', kind: PRODUCER },
    ]);
    expect(above.at(-1)).toMatchObject({ service: 'users-api', kind: SERVER, name: expect.stringMatching(/^POST/) });
    // Each step of the job is a span under the job, in order.
    const steps = await waitFor('the three steps', () => {
      const found = trace(applied.traceId).filter((s) => s.parentSpanId === job.spanId && s.kind === INTERNAL);
      return found.length >= 3 ? found : undefined;
    });
    expect(steps.map((s) => s.name).sort()).toEqual(['video preview', 'video probe', 'video thumbnail']);
    // The notifier's push of the same result hangs under the same send.
    const pushed = await waitFor('the notifier consuming the result', () =>
      trace(applied.traceId).find((s) => isResult(s, 'notifier')),
    );
    expect(pushed.parentSpanId).toBe(resultSend.spanId);
  });

  it('a post update: the request, then the invalidation and the notifier push', async () => {
    const author = await signUp(apiUrl);
    const call = (method: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${apiUrl}${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...author.auth, ...headers },
        body: JSON.stringify(body),
      });
    const created = await call('POST', '/posts', { title: 'first', body: 'text' });
    expect(created.status).toBe(201);
    const post = (await created.json()) as { id: string; version: number };
    const updated = await call('PATCH', `/posts/${post.id}`, { title: 'second' }, { 'if-match': `"${post.version}"` });
    expect(updated.status).toBe(200);

    const isUpdate = (s: ReceivedSpan, service: string) =>
      s.service === service &&
      s.name === 'process posts' &&
      s.attributes['cloudevents.event_type'] === 'post.updated.v1';
    const invalidated = await waitFor('the cache-invalidator consuming the update', () =>
      receiver.spans.find((s) => isUpdate(s, 'cache-invalidator')),
    );
    const [send, ...above] = await ancestorsOf(invalidated);
    expect(describeSpan(send)).toEqual({ service: 'users-api', name: 'send posts', kind: PRODUCER });
    expect(above.at(-1)).toMatchObject({ service: 'users-api', kind: SERVER, name: expect.stringMatching(/^PATCH/) });
    const pushed = await waitFor('the notifier consuming the update', () =>
      trace(invalidated.traceId).find((s) => isUpdate(s, 'notifier')),
    );
    expect(pushed.parentSpanId).toBe(send.spanId);
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
    // Refused by the body parser, before any route: still a correlation id, and a request line.
    const malformed = await post(`{"email":"${email}","password":"${password}`, {
      'x-correlation-id': `${correlationId}-bad`,
    });
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('x-correlation-id')).toBe(`${correlationId}-bad`);
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
      linesOf(apps['email-service']).find(
        (line) => line.correlationId === correlationId && /sent welcome/.test(String(line.message)),
      ),
    );
    for (const line of [...linesOf(apps['users-api']), ...linesOf(apps['email-service'])]) {
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
    const registered = linesOf(apps['users-api']).find(
      (line) => line.correlationId === correlationId && /registered user/.test(String(line.message)),
    );
    expect(registered?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(sent.traceId).toBe(registered?.traceId);
    // The request lines have the correlation ids the responses echoed, the body parser's refusal included.
    await waitFor('the request lines', () => {
      const messages = linesOf(apps['users-api']).map(
        (line) => `${String(line.correlationId)} ${String(line.message)}`,
      );
      return (
        messages.some((m) => m.startsWith(`${correlationId} POST /users 201`)) &&
        messages.some((m) => m.startsWith(`${correlationId}-bad POST /users 400`))
      );
    });
    // One value per field: JSON.parse would silently keep the last of two.
    for (const raw of (apps['users-api'].printed + apps['email-service'].printed).split('\n')) {
      for (const key of ['time', 'level', 'app', 'traceId', 'correlationId', 'eventId', 'eventType']) {
        expect(raw.split(`"${key}":`).length).toBeLessThanOrEqual(2);
      }
    }

    const printed = apps['users-api'].printed + apps['email-service'].printed;
    for (const secret of [password, rejected, email, '$argon2']) expect(printed).not.toContain(secret);
  });
});
