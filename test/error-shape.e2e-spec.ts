import { randomUUID } from 'node:crypto';
import { loadConfig, notifierConfigSchema } from '@app/config';
import { ALL_TOPICS } from '@app/contracts';
import { ensureTopics } from '@app/messaging';
import { RunningApp, startApp } from '@app/runtime';
import { notifierApp } from '../apps/notifier/src/app';
import { bootEmailService } from './support/apps';
import { testKafka } from './support/broker';
import { appEnv } from './support/env';
import { memoryLogger } from './support/log-lines';
import { SseStream } from './support/sse';
import { waitFor } from './support/wait';

/** The one error shape of every app: `{ statusCode, code, message, errors?: [{ field, message }] }`, nothing else. */
const apiError = (statusCode: number, code: string, errors?: { field: string; message: unknown }[]) => ({
  statusCode,
  code,
  message: expect.stringMatching(/\S/),
  ...(errors ? { errors } : {}),
});

/** The notifier's refusals (400, 401, 503) and every app's 404 answer the error shape users-api documents. */
describe('one error shape in every app', () => {
  const apps: RunningApp[] = [];
  const streams: SseStream[] = [];
  const { logger, lines } = memoryLogger('notifier');
  let notifier: RunningApp;

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    const config = loadConfig('notifier', notifierConfigSchema, appEnv({ NOTIFIER_MAX_CLIENTS: '1' }));
    notifier = await startApp(notifierApp, config, logger);
    apps.push(notifier);
    await waitFor(
      'the notifier to join its group',
      () => notifier.server.consumerStatus().membership.state === 'joined',
    );
  });

  afterAll(async () => {
    for (const stream of streams) stream.close();
    for (const app of apps) await app.app.close().catch(() => undefined);
  });

  const refusal = async (query: string, headers: Record<string, string> = {}) => {
    const stream = await SseStream.open(`${notifier.url}/notifications/stream${query}`, headers);
    streams.push(stream);
    return { status: stream.status, body: JSON.parse(stream.body || 'null') as unknown };
  };

  it('notifier: an unknown or private types= name, a forged Last-Event-ID, no sign-in and a full replica', async () => {
    expect(await refusal('?types=post.created,post.liked')).toEqual({
      status: 400,
      body: apiError(400, 'VALIDATION.FAILED', [{ field: 'types', message: expect.stringContaining("'post.liked'") }]),
    });
    // A private event's name is not on the public stream.
    expect(await refusal('?types=email.sent')).toEqual({
      status: 400,
      body: apiError(400, 'VALIDATION.FAILED', [{ field: 'types', message: expect.stringContaining("'email.sent'") }]),
    });
    // Positions anyone could type (the whole history) are not an id the notifier gave out.
    expect(await refusal('', { 'Last-Event-ID': 'posts:0,0,0' })).toEqual({
      status: 400,
      body: { ...apiError(400, 'NOTIFIER.BAD_LAST_EVENT_ID'), message: expect.stringContaining('not signed') },
    });
    expect(await refusal('?lastEventId=posts:0,0,0~AAAAAAAAAAAAAAAAAAAAAA')).toEqual({
      status: 400,
      body: { ...apiError(400, 'NOTIFIER.BAD_LAST_EVENT_ID'), message: expect.stringContaining('signature') },
    });
    // The per-user stream without a cookie or a Bearer header, and with a forged cookie: 401.
    const mine = await SseStream.open(`${notifier.url}/notifications/me/stream`);
    expect({ status: mine.status, body: JSON.parse(mine.body) as unknown }).toEqual({
      status: 401,
      body: apiError(401, 'AUTH.TOKEN_MISSING'),
    });
    const forged = await SseStream.open(`${notifier.url}/notifications/me/stream`, {
      cookie: `notifier_session=${randomUUID()}.9999999999.AAAAAAAAAAAAAAAAAAAAAA`,
    });
    expect({ status: forged.status, body: JSON.parse(forged.body) as unknown }).toEqual({
      status: 401,
      body: apiError(401, 'AUTH.TOKEN_INVALID'),
    });
    const session = await fetch(`${notifier.url}/notifications/session`, { method: 'POST' });
    expect({ status: session.status, body: await session.json() }).toEqual({
      status: 401,
      body: apiError(401, 'AUTH.TOKEN_MISSING'),
    });
    expect(session.headers.get('www-authenticate')).toBe('Bearer');
    const open = await SseStream.open(`${notifier.url}/notifications/stream`);
    streams.push(open);
    expect(open.status).toBe(200);
    expect(await refusal('')).toEqual({ status: 503, body: apiError(503, 'NOTIFIER.FULL') });
    // Its request line is an error line that names what failed (never "[object Object]").
    const line = await waitFor('the 503 request line', () => lines.find((l) => l.res?.statusCode === 503));
    expect(line).toMatchObject({ level: 'error', err: { message: 'failed with status code 503' } });
  });

  it('an unknown path is a 404 ROUTE.NOT_FOUND in the notifier and in a consumer app', async () => {
    const email = await bootEmailService();
    apps.push(email);
    for (const app of [notifier, email]) {
      const response = await fetch(`${app.url}/no/such/path`);
      expect({ status: response.status, body: await response.json() }).toEqual({
        status: 404,
        body: apiError(404, 'ROUTE.NOT_FOUND'),
      });
      expect(response.headers.get('x-correlation-id')).toBeTruthy();
    }
  });
});
