import { randomUUID } from 'node:crypto';
import { connect, Socket } from 'node:net';
import { ALL_TOPICS, createEnvelope } from '@app/contracts';
import { DeadLetters, ensureTopics } from '@app/messaging';
import type { RunningApp } from '@app/runtime';
import { bootEmailService, bootUsersApi } from './support/apps';
import { testKafka } from './support/broker';
import { EmailEvents, startGroupAtEnd } from './support/kafka';
import { SmtpCatcher } from './support/smtp';
import { waitFor } from './support/wait';

/**
 * The HTTP and event boundaries as an outside attacker probes them: what is refused, how early, with which answer.
 * users-api runs in-process on a real database and broker; the event half runs email-service against a real SMTP
 * server.
 */
describe('HTTP boundary', () => {
  let api: RunningApp;
  let url = '';
  const port = () => Number(new URL(url).port);

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    api = await bootUsersApi({ HTTP_BODY_TIMEOUT_MS: '1500' });
    url = api.url;
  });

  afterAll(async () => {
    await api?.app.close();
  });

  const user = () => {
    const name = `hb-${randomUUID().slice(0, 8)}`;
    return { email: `${name}@example.com`, username: name, password: 'correct horse battery staple' };
  };

  /** Raw HTTP over a socket: what a browser form, a slow client or a liar about Content-Length sends. */
  function rawRequest(head: string): { socket: Socket; answer: Promise<string>; closed: Promise<number> } {
    const started = Date.now();
    const socket = connect(port(), '127.0.0.1');
    socket.write(head);
    let text = '';
    const answer = new Promise<string>((resolve) => {
      socket.on('data', (chunk) => {
        text += chunk.toString();
        if (text.includes('\r\n\r\n')) resolve(text);
      });
    });
    const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - started)));
    socket.on('error', () => undefined);
    return { socket, answer, closed };
  }

  it.each([
    [
      'a form post from another origin',
      'application/x-www-form-urlencoded',
      (u: ReturnType<typeof user>) => new URLSearchParams(u).toString(),
    ],
    [
      'JSON declared as UTF-7',
      'application/json; charset=utf-7',
      (u: ReturnType<typeof user>) => JSON.stringify(u).replace('"', '+ACI-'),
    ],
    [
      'JSON declared as Latin-1',
      'application/json; charset=iso-8859-1',
      (u: ReturnType<typeof user>) => JSON.stringify(u),
    ],
    ['text/plain (a CORS-simple type)', 'text/plain', (u: ReturnType<typeof user>) => JSON.stringify(u)],
  ])('refuses %s with 415 and registers nobody', async (_name, type, encode) => {
    const account = user();
    const response = await fetch(`${url}/users`, {
      method: 'POST',
      headers: { 'content-type': type, origin: 'https://evil.example', 'x-correlation-id': 'probe-415' },
      body: encode(account),
    });
    expect(response.status).toBe(415);
    expect(await response.json()).toMatchObject({ statusCode: 415, code: 'REQUEST.UNSUPPORTED_MEDIA_TYPE' });
    expect(response.headers.get('x-correlation-id')).toBe('probe-415');
    // Nobody was registered under that name: the same account registers now.
    const again = await fetch(`${url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=UTF-8' },
      body: JSON.stringify(account),
    });
    expect(again.status).toBe(201);
  });

  it('applies the same rule on every route with a body (PATCH /posts)', async () => {
    const response = await fetch(`${url}/posts/${randomUUID()}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'if-match': '*' },
      body: 'title=x',
    });
    expect(response.status).toBe(415);
  });

  it('refuses a body that is not valid UTF-8', async () => {
    const response = await fetch(`${url}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.concat([Buffer.from('{"username":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ message: 'Request body is not valid UTF-8' });
  });

  it('answers 413 on a declared 100 MB body at once and closes the connection without reading it', async () => {
    const { answer, closed, socket } = rawRequest(
      `POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n{"a":`,
    );
    expect(await answer).toMatch(/^HTTP\/1\.1 413/);
    // Nothing more was sent, so only the server can have closed it.
    const ms = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 5000))]);
    socket.destroy();
    expect(ms).toBeGreaterThanOrEqual(0);
  });

  it('times out a body trickling in after HTTP_BODY_TIMEOUT_MS with 408 and closes the connection', async () => {
    const { answer, closed, socket } = rawRequest(
      'POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n',
    );
    const trickle = setInterval(() => socket.write('1\r\n \r\n'), 200);
    try {
      expect(await answer).toMatch(/^HTTP\/1\.1 408/);
      const ms = await closed;
      expect(ms).toBeLessThan(5000);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
  });

  it('sends the security headers once, for every answer, and no X-Powered-By', async () => {
    for (const response of [await fetch(`${url}/users/${randomUUID()}`), await fetch(`${url}/health/live`)]) {
      expect(response.headers.get('x-powered-by')).toBeNull();
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(response.headers.get('x-correlation-id')).toEqual(expect.any(String));
    }
    // The documents page allows its own scripts, by origin and by hash, nothing else.
    const docs = await fetch(`${url}/docs`);
    expect(docs.headers.get('content-security-policy')).toMatch(/script-src 'self' 'sha256-[^']+'/);
  });

  it('hands out the public profile only, and keeps broker details out of /health', async () => {
    const created = (await (
      await fetch(`${url}/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(user()),
      })
    ).json()) as { id: string };
    const profile = (await (await fetch(`${url}/users/${created.id}`)).json()) as Record<string, unknown>;
    expect(Object.keys(profile).sort()).toEqual(['createdAt', 'id', 'username']);
    const health = (await (await fetch(`${url}/health`)).json()) as { relay: Record<string, unknown> };
    expect(health.relay).not.toHaveProperty('lastError');
  });

  it('answers 429 in the error shape of every other error, with the correlation id', async () => {
    const limited = await bootUsersApi({ RATE_LIMIT_PER_MINUTE: '2' });
    try {
      let last: Response | undefined;
      for (let i = 0; i < 3; i++) last = await fetch(`${limited.url}/users/${randomUUID()}`);
      expect(last!.status).toBe(429);
      expect(await last!.json()).toEqual({
        statusCode: 429,
        code: 'REQUEST.RATE_LIMITED',
        message: 'Too many requests from this address; try again in a minute',
      });
      expect(last!.headers.get('x-correlation-id')).toEqual(expect.any(String));
      // Probes and scrapes are never limited.
      for (let i = 0; i < 5; i++) expect((await fetch(`${limited.url}/health`)).status).toBe(200);
    } finally {
      await limited.app.close();
    }
  });
});

describe('event boundary', () => {
  const smtp = new SmtpCatcher();
  const events = new EmailEvents();
  let mailer: RunningApp;
  const group = `hb-email-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    await smtp.start();
    await startGroupAtEnd(group, 'emails');
    mailer = await bootEmailService({ SMTP_URL: smtp.url, EMAIL_CONSUMER_GROUP: group });
  });

  afterAll(async () => {
    await mailer?.app.close();
    await events.close();
    await smtp.stop();
  });

  const welcome = (username: string, correlationId?: string) => {
    const userId = randomUUID();
    const envelope = createEnvelope({
      type: 'email.requested.v1',
      source: 'e2e-tests',
      data: { to: `${userId}@example.com`, template: 'welcome', data: { username }, userId },
    });
    return { userId, key: userId, value: JSON.stringify({ ...envelope, correlationid: correlationId ?? envelope.id }) };
  };

  it('a username that looks like a placeholder reaches the subject as text', async () => {
    const event = welcome('{{constructor}}');
    await events.publishRaw([event]);
    const [mail] = await waitFor(
      'the email',
      () => smtp.to(`${event.userId}@example.com`).length > 0 && smtp.to(`${event.userId}@example.com`),
    );
    expect(mail.subject).toBe('Welcome, {{constructor}}!');
  });

  it('an envelope whose correlation id carries CR/LF is dead-lettered, never mailed', async () => {
    const bad = welcome('mallory', 'c-1\r\nBcc: victim@example.com');
    const good = welcome('after-the-bad-one');
    await events.publishRaw([bad, good]);
    await waitFor('the next email', () => smtp.to(`${good.userId}@example.com`).length > 0);
    const letters = await waitFor('the dead letter', async () => {
      const list = await new DeadLetters(testKafka(), group).list();
      return list.length > 0 && list;
    });
    expect(letters.map((letter) => letter.key)).toContain(bad.key);
    expect(smtp.to(`${bad.userId}@example.com`)).toHaveLength(0);
  });
});
