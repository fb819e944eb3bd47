import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Client } from 'pg';
import { loadConfig, usersApiConfigSchema } from '@app/config';
import { ALL_TOPICS } from '@app/contracts';
import { ensureTopics } from '@app/messaging';
import { RunningApp, startApp } from '@app/runtime';
import { usersApiApp } from '../apps/users-api/src/app';
import { Account, signUp } from './support/accounts';
import { testKafka } from './support/broker';
import { appEnv, TEST_DATABASE_URL } from './support/env';
import { memoryLogger } from './support/log-lines';
import { parseExposition, sampleOf } from './support/prometheus';
import { waitFor } from './support/wait';

/**
 * A client that goes away in the middle of a `POST /videos` body (its socket closed after part of the file): the
 * request log and the HTTP metrics say it was aborted, never the 202 the route answers when an upload succeeds,
 * and nothing of it is kept — no video row, no `video.submitted.v1`, no file.
 */
describe('an upload aborted mid-body', () => {
  const suffix = randomUUID().slice(0, 8);
  const mediaDir = join(__dirname, '..', '.run', 'test-media', `abort-${suffix}`);
  const db = new Client({ connectionString: TEST_DATABASE_URL });
  // The app's own JSON logger, at info, into memory: the request lines as an operator would read them.
  const { logger, lines } = memoryLogger('users-api');
  let api: RunningApp;
  /** Uploads need a signed-in user: every upload here is theirs. */
  let uploader: Account;

  const uploads = () => (existsSync(join(mediaDir, 'uploads')) ? readdirSync(join(mediaDir, 'uploads')) : []);
  const counts = async () =>
    (
      await db.query<{ videos: string; events: string }>(
        `SELECT (SELECT count(*) FROM users_api.videos) AS videos,
                (SELECT count(*) FROM users_api.outbox WHERE event_type = 'video.submitted.v1') AS events`,
      )
    ).rows[0];

  beforeAll(async () => {
    await ensureTopics(testKafka(), ALL_TOPICS, { partitions: 3, replicationFactor: 1 });
    const config = loadConfig(
      'users-api',
      usersApiConfigSchema,
      appEnv({ MEDIA_DIR: mediaDir, HTTP_BODY_TIMEOUT_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '1000' }),
    );
    api = await startApp(usersApiApp, config, logger);
    await db.connect();
    uploader = await signUp(api.url);
  });

  afterAll(async () => {
    await api?.app.close();
    await db.end();
    rmSync(mediaDir, { recursive: true, force: true });
  });

  it('is logged and counted as aborted (499), not 202, and leaves no row, no event, no file', async () => {
    const before = await counts();
    const boundary = `----abort${suffix}`;
    const head = Buffer.concat([Buffer.from([0, 0, 0, 0x20]), Buffer.from('ftypisom'), Buffer.alloc(256 * 1024)]);
    const partHead =
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"\r\n` +
      `Content-Type: video/mp4\r\n\r\n`;
    const socket = connect(Number(new URL(api.url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(
      `POST /videos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${uploader.auth.authorization}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\n` +
        `Content-Length: ${10 * 1024 * 1024}\r\n\r\n`,
    );
    socket.write(partHead);
    socket.write(head);
    // The file is being written when the client goes: the upload got past the sniffing into storage.
    await waitFor('the upload to reach storage', () => uploads().some((name) => name.endsWith('.part')));
    socket.destroy();

    const line = await waitFor('the request line of the upload', () =>
      lines.find((l) => l.req?.method === 'POST' && l.req.url === '/videos'),
    );
    expect({ status: line.res?.statusCode, message: line.message }).toEqual({
      status: 499,
      message: expect.stringMatching(/^POST \/videos 499 aborted by the client after \d+ ms$/),
    });
    const metrics = parseExposition(await (await fetch(`${api.url}/metrics`)).text());
    const requests = (status: string) =>
      sampleOf(metrics, 'http_request_duration_seconds', { method: 'POST', route: '/videos', status });
    expect({ aborted: requests('499'), accepted: requests('202') }).toEqual({ aborted: 1, accepted: undefined });

    await waitFor('the partial file to be removed', () => uploads().length === 0);
    expect(await counts()).toEqual(before);
  });

  it('a body the server cuts off at its deadline keeps its 408, and a refused upload its 4xx: only the client aborts', async () => {
    // After the sign-up's own POST /users.
    const from = lines.length;
    const socket = connect(Number(new URL(api.url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(
      'POST /users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"em',
    );
    const answer = await new Promise<string>((resolve) => socket.once('data', (chunk) => resolve(chunk.toString())));
    expect(answer).toMatch(/^HTTP\/1.1 408/);
    const timedOut = await waitFor('the request line of the slow body', () =>
      lines.slice(from).find((l) => l.req?.method === 'POST' && l.req.url === '/users'),
    );
    expect({ status: timedOut.res?.statusCode, message: timedOut.message }).toEqual({
      status: 408,
      message: expect.stringMatching(/^POST \/users 408 \d+ ms$/),
    });

    const form = new FormData();
    form.append('file', new Blob(['meeting notes, not a video\n'.repeat(400)]), 'notes.mp4');
    const refused = await fetch(`${api.url}/videos`, { method: 'POST', body: form, headers: uploader.auth });
    expect(refused.status).toBe(415);
    await waitFor('the refused upload in the log', () =>
      lines.some((l) => l.req?.url === '/videos' && l.res?.statusCode === 415 && / 415 \d+ ms$/.test(l.message)),
    );
    const metrics = parseExposition(await (await fetch(`${api.url}/metrics`)).text());
    const count = (route: string, status: string) =>
      sampleOf(metrics, 'http_request_duration_seconds', { method: 'POST', route, status });
    expect({ deadline: count('(unmatched)', '408'), refused: count('/videos', '415') }).toEqual({
      deadline: 1,
      refused: 1,
    });
  });

  it('an upload the server cuts off at HTTP_REQUEST_TIMEOUT_MS is logged and counted 408, not as aborted by the client', async () => {
    const before = await counts();
    const from = lines.length;
    const boundary = `----slow${suffix}`;
    const socket = connect(Number(new URL(api.url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(
      `POST /videos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${uploader.auth.authorization}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\n` +
        `Content-Length: ${10 * 1024 * 1024}\r\n\r\n--${boundary}\r\n` +
        `Content-Disposition: form-data; name="file"; filename="slow.mp4"\r\nContent-Type: video/mp4\r\n\r\n`,
    );
    socket.write(Buffer.concat([Buffer.from([0, 0, 0, 0x20]), Buffer.from('ftypisom'), Buffer.alloc(64 * 1024)]));
    // Node looks for requests past their time about every 30 s.
    const answer = await new Promise<string>((resolve) => socket.once('data', (chunk) => resolve(chunk.toString())));
    expect(answer).toMatch(/^HTTP\/1.1 408/);
    const line = await waitFor('the request line of the slow upload', () =>
      lines.slice(from).find((l) => l.req?.url === '/videos'),
    );
    expect({ status: line.res?.statusCode, message: line.message }).toEqual({
      status: 408,
      message: expect.stringMatching(/^POST \/videos 408 \d+ ms$/),
    });
    const metrics = parseExposition(await (await fetch(`${api.url}/metrics`)).text());
    expect(
      sampleOf(metrics, 'http_request_duration_seconds', { method: 'POST', route: '/videos', status: '408' }),
    ).toBe(1);
    await waitFor('the partial file to be removed', () => uploads().length === 0);
    expect(await counts()).toEqual(before);
  }, 60_000);
});
