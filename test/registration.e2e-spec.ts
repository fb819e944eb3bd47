import { randomUUID } from 'node:crypto';
import { INestApplication } from '@nestjs/common';
import { ensureTopics, retryTopicOf } from '@app/messaging';
import { Client } from 'pg';
import { ALL_TOPICS, EnvelopeSchema, UserRegisteredV1 } from '@app/contracts';
import type { RunningApp } from '@app/runtime';
import { bootEmailService, bootUsersApi } from './support/apps';
import { TEST_DATABASE_URL } from './support/env';
import { startBroker, stopBroker, testKafka } from './support/broker';
import { startGroupAtEnd, StartOffsets, waitForDrained } from './support/kafka';
import { SmtpCatcher } from './support/smtp';
import { waitFor } from './support/wait';

const FROM = 'Kafka Nest <no-reply@kafka-nest.test>';

describe('registration → welcome email', () => {
  const smtp = new SmtpCatcher();
  let api: INestApplication;
  let url: string;
  let emailService: RunningApp | undefined;
  const db = new Client({ connectionString: TEST_DATABASE_URL });

  // Its own group, started at the end of `emails`: events of other suites on the same broker are not its concern.
  const group = `registration-${randomUUID().slice(0, 8)}`;
  let startOffsets: StartOffsets = [];
  const emailEnv = () => ({ SMTP_URL: smtp.url, SMTP_FROM: FROM, EMAIL_CONSUMER_GROUP: group });

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    startOffsets = await startGroupAtEnd(group, 'emails');
    await smtp.start();
    ({ app: api, url } = await bootUsersApi());
    emailService = await bootEmailService(emailEnv());
    await db.connect();
  });

  afterAll(async () => {
    await emailService?.app.close();
    await api?.close();
    await smtp.stop();
    await db.end();
  });

  const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

  /**
   * Exactly one email to the address: waits for the first, then for the group to have committed everything on
   * `emails` and its retry topic, so a second copy would have arrived before the count is taken.
   */
  async function expectOneEmail(address: string, what: string, timeoutMs = 30_000): Promise<void> {
    await waitFor(what, () => smtp.to(address).length > 0, { timeoutMs });
    await waitForDrained(group, ['emails', retryTopicOf(group)]);
    expect(smtp.to(address)).toHaveLength(1);
  }

  function register(body: unknown, headers: Record<string, string> = {}, base = url): Promise<Response> {
    return fetch(`${base}/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  }

  function newUser() {
    const name = unique('user');
    return { email: `${name}@example.com`, username: name, password: 'correct horse battery staple' };
  }

  async function outboxRows(
    userId: string,
  ): Promise<{ event_id: string; event_type: string; published_at: Date | null }[]> {
    const result = await db.query<{ event_id: string; event_type: string; published_at: Date | null }>(
      'SELECT event_id, event_type, published_at FROM users_api.outbox WHERE message_key = $1 ORDER BY id',
      [userId],
    );
    return result.rows;
  }

  async function counts(): Promise<{ users: number; outbox: number }> {
    const result = await db.query<{ users: number; outbox: number }>(
      'SELECT (SELECT count(*) FROM users_api.users)::int AS users, (SELECT count(*) FROM users_api.outbox)::int AS outbox',
    );
    return result.rows[0];
  }

  it('answers 201 at once and the welcome email arrives with the right headers and body', async () => {
    const user = newUser();
    const response = await register({ ...user, email: `  ${user.email.toUpperCase()} ` });
    expect(response.status).toBe(201);
    const body = (await response.json()) as Record<string, string>;
    expect(body).toEqual({
      id: expect.any(String),
      email: user.email,
      username: user.username,
      createdAt: expect.any(String),
    });
    expect(response.headers.get('location')).toBe(`/users/${body.id}`);
    expect(JSON.stringify(body)).not.toContain('password');

    const [mail] = await waitFor('the welcome email', () => smtp.to(user.email).length > 0 && smtp.to(user.email));
    const emailEvent = (await outboxRows(body.id)).find((row) => row.event_type === 'email.requested.v1');
    expect(emailEvent).toBeDefined();
    expect(mail.to).toEqual([user.email]);
    expect(mail.subject).toBe(`Welcome, ${user.username}!`);
    expect(mail.messageId).toBe(`<${emailEvent?.event_id}@kafka-nest.test>`);
    expect(mail.from).toContain('no-reply@kafka-nest.test');
    expect(mail.html).toContain(`Welcome, ${user.username}!`);

    const fetched = await fetch(`${url}/users/${body.id}`);
    expect(fetched.status).toBe(200);
    // Anyone may read the public profile; the email address went to its owner only, in the 201.
    expect(await fetched.json()).toEqual({ id: body.id, username: body.username, createdAt: body.createdAt });
    expect(fetched.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('cache-control')).toBe('no-store');
  });

  it('stores the password as argon2id with OWASP parameters, never in an event', async () => {
    const user = newUser();
    const response = await register(user);
    const { id } = (await response.json()) as { id: string };
    const stored = await db.query('SELECT password_hash FROM users_api.users WHERE id = $1', [id]);
    expect(stored.rows[0].password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
    const events = await db.query('SELECT value FROM users_api.outbox WHERE message_key = $1', [id]);
    expect(events.rows).toHaveLength(2);
    for (const row of events.rows as { value: string }[]) {
      expect(row.value).not.toContain(user.password);
      expect(row.value).not.toContain('argon2');
    }
  });

  it('publishes user.registered.v1 on `users`, keyed by user id, valid per its schema for a plain consumer', async () => {
    const user = newUser();
    const { id } = (await (await register(user)).json()) as { id: string };
    const consumer = testKafka().consumer({ groupId: unique('e2e-reader') });
    const found: { key: string; value: string }[] = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: 'users', fromBeginning: true });
      await consumer.run({
        eachMessage: ({ message }) => {
          if (message.key?.toString() === id) found.push({ key: id, value: message.value?.toString() ?? '' });
          return Promise.resolve();
        },
      });
      await waitFor('user.registered.v1 on users', () => found.length > 0, { timeoutMs: 30_000 });
    } finally {
      await consumer.disconnect();
    }
    const envelope = EnvelopeSchema.parse(JSON.parse(found[0].value));
    expect(envelope).toMatchObject({ type: 'user.registered.v1', source: 'users-api', specversion: '1.0' });
    const data = UserRegisteredV1.parse(envelope.data);
    expect(data).toMatchObject({ userId: id, email: user.email, username: user.username });
    expect(found[0].value).not.toContain(user.password);
  });

  describe('bad input gets a 400 with per-field errors and writes nothing', () => {
    const valid = () => newUser();
    const cases: [string, () => unknown, string[]][] = [
      ['a missing email', () => ({ ...valid(), email: undefined }), ['email']],
      ['an invalid email', () => ({ ...valid(), email: 'not-an-email' }), ['email']],
      ['a CRLF in the email', () => ({ ...valid(), email: 'a@example.com\r\nBcc: victim@example.com' }), ['email']],
      ['a CRLF in the username', () => ({ ...valid(), username: 'bob\r\nBcc: x@y.z' }), ['username']],
      ['a short password', () => ({ ...valid(), password: 'short' }), ['password']],
      ['an over-long password', () => ({ ...valid(), password: 'x'.repeat(129) }), ['password']],
      ['an over-long username', () => ({ ...valid(), username: 'u'.repeat(33) }), ['username']],
      [
        'extra fields',
        () => ({ ...valid(), role: 'admin', isAdmin: true, id: randomUUID() }),
        ['role', 'isAdmin', 'id'],
      ],
      ['a number where a string belongs', () => ({ ...valid(), username: 42 }), ['username']],
      ['an empty body', () => ({}), ['email', 'username', 'password']],
    ];

    it.each(cases)('%s', async (_name, body, fields) => {
      const before = await counts();
      const response = await register(body());
      expect(response.status).toBe(400);
      const error = (await response.json()) as { code: string; errors: { field: string; message: string }[] };
      expect(error.code).toBe('VALIDATION.FAILED');
      expect([...new Set(error.errors.map((e) => e.field))].sort()).toEqual([...fields].sort());
      for (const e of error.errors) expect(e.message.length).toBeGreaterThan(0);
      expect(await counts()).toEqual(before);
    });

    it('malformed JSON', async () => {
      const before = await counts();
      const response = await register('{"email": ');
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ code: 'REQUEST.MALFORMED_JSON' });
      expect(await counts()).toEqual(before);
    });
  });

  it('409 for a taken email (any case) or username, with no outbox row', async () => {
    const user = newUser();
    expect((await register(user)).status).toBe(201);
    const before = await counts();
    const sameEmail = await register({ ...newUser(), email: user.email.toUpperCase() });
    expect(sameEmail.status).toBe(409);
    expect(await sameEmail.json()).toMatchObject({ code: 'USER.EMAIL_TAKEN', errors: [{ field: 'email' }] });
    const sameName = await register({ ...newUser(), username: user.username.toUpperCase() });
    expect(sameName.status).toBe(409);
    expect(await sameName.json()).toMatchObject({ code: 'USER.USERNAME_TAKEN' });
    expect(await counts()).toEqual(before);
  });

  it('20 concurrent registrations with one email: exactly one 201, the rest 409, one email sent', async () => {
    const user = newUser();
    const responses = await Promise.all(Array.from({ length: 20 }, () => register(user)));
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    await expectOneEmail(user.email, 'the one welcome email');
    const { rows } = await db.query('SELECT count(*)::int AS n FROM users_api.users WHERE email = $1', [user.email]);
    expect(rows[0].n).toBe(1);
  });

  it('GET /users/:id answers 404 for an unknown id and 400 for a malformed one', async () => {
    const missing = await fetch(`${url}/users/${randomUUID()}`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'USER.NOT_FOUND' });
    const malformed = await fetch(`${url}/users/not-a-uuid`);
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({
      code: 'VALIDATION.FAILED',
      errors: [{ field: 'id', message: 'must be a UUID' }],
    });
  });

  it('with two users-api replicas one relay is active; the other takes over when it stops', async () => {
    const relayOf = async (base: string) =>
      ((await (await fetch(`${base}/health`)).json()) as { relay: { leader: boolean } }).relay;
    const second = await bootUsersApi({ OUTBOX_IDLE_POLL_MS: '200' });
    let first: Awaited<ReturnType<typeof bootUsersApi>> | undefined = await bootUsersApi({
      OUTBOX_IDLE_POLL_MS: '200',
    });
    try {
      // `api` holds the lock since the suite began; the replicas started later wait for it.
      expect((await relayOf(url)).leader).toBe(true);
      expect((await relayOf(second.url)).leader).toBe(false);
      expect((await relayOf(first.url)).leader).toBe(false);
      const user = newUser();
      expect((await register(user, {}, second.url)).status).toBe(201);
      await expectOneEmail(user.email, 'the email of a user registered on a replica');

      await api.close();
      await waitFor('a replica to take over the relay', async () => {
        const leaders = [(await relayOf(second.url)).leader, (await relayOf(first!.url)).leader];
        return leaders.filter(Boolean).length === 1;
      });
      const after = newUser();
      expect((await register(after, {}, second.url)).status).toBe(201);
      await expectOneEmail(after.email, 'the email after the takeover');
    } finally {
      ({ app: api, url } = await bootUsersApi({ OUTBOX_IDLE_POLL_MS: '200' }));
      await first?.app.close();
      first = undefined;
      await second.app.close();
    }
  });

  it('rate-limits a client over its budget with 429', async () => {
    const limited = await bootUsersApi({ RATE_LIMIT_PER_MINUTE: '2', OUTBOX_RELAY_ENABLED: 'false' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const response = await fetch(`${limited.url}/users/${randomUUID()}`);
        statuses.push(response.status);
        if (response.status === 429) expect(await response.json()).toMatchObject({ code: 'REQUEST.RATE_LIMITED' });
      }
      expect(statuses).toEqual([404, 404, 429]);
      // Probes and scrapes are not clients: they still answer once a client is limited.
      for (const path of ['/health', '/health/live', '/health/ready', '/metrics']) {
        expect((await fetch(`${limited.url}${path}`)).status).toBe(200);
      }
    } finally {
      await limited.app.close();
    }
  });

  // Stops and starts the broker scripts/test.sh manages; fails against an external KAFKA_BROKERS.
  it('answers 201 while the broker is down; the email arrives once it is back', async () => {
    await stopBroker();
    let user: ReturnType<typeof newUser>;
    try {
      user = newUser();
      const started = Date.now();
      const response = await register(user);
      const elapsed = Date.now() - started;
      expect(response.status).toBe(201);
      expect(elapsed).toBeLessThan(5_000);
      const { id } = (await response.json()) as { id: string };
      const rows = await outboxRows(id);
      expect(rows).toHaveLength(2);
      expect(rows.every((row) => row.published_at === null)).toBe(true);
    } finally {
      await startBroker();
    }
    await expectOneEmail(user.email, 'the email after the broker came back', 90_000);
  });

  it('replaying everything the group consumed sends no second email', async () => {
    const user = newUser();
    expect((await register(user)).status).toBe(201);
    await expectOneEmail(user.email, 'the email before the replay');
    const sentBefore = smtp.received.map((mail) => mail.messageId);

    await emailService?.app.close();
    emailService = undefined;
    const admin = testKafka().admin();
    await admin.connect();
    try {
      // Back to where this group began: every event it consumed is delivered again.
      await startGroupAtEnd(group, 'emails', startOffsets);
      emailService = await bootEmailService(emailEnv());
      const ends = await admin.fetchTopicOffsets('emails');
      await waitFor(
        'email-service to re-consume emails up to the end',
        async () => {
          const [committed] = await admin.fetchOffsets({ groupId: group, topics: ['emails'] });
          return ends.every((end) => {
            const partition = committed.partitions.find((p) => p.partition === end.partition);
            return partition !== undefined && BigInt(partition.offset) >= BigInt(end.high);
          });
        },
        { timeoutMs: 60_000, intervalMs: 250 },
      );
    } finally {
      await admin.disconnect();
    }
    // Every event since the group began was delivered again, and not one email went out for it.
    expect(smtp.received.map((mail) => mail.messageId)).toEqual(sentBefore);
    expect(smtp.to(user.email)).toHaveLength(1);
  });
});
