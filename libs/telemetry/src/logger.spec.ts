import { Writable } from 'node:stream';
import { createLogger, outsideLogContext, withLogFields } from './logger';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const lines = () =>
    chunks
      .join('')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { stream, lines };
}

describe('createLogger', () => {
  it('writes one JSON object per entry with time, level name, app and message', () => {
    const { stream, lines } = capture();
    createLogger({ app: 'users-api', level: 'log', format: 'json', destination: stream }).info('hello');
    expect(lines()).toEqual([
      expect.objectContaining({
        level: 'info',
        app: 'users-api',
        message: 'hello',
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      }),
    ]);
  });

  it('keeps below LOG_LEVEL out, with Nest names mapped to pino levels', () => {
    const { stream, lines } = capture();
    const logger = createLogger({ app: 'a', level: 'warn', format: 'json', destination: stream });
    logger.info('not shown');
    logger.warn('shown');
    expect(lines().map((line) => line.message)).toEqual(['shown']);
    expect(createLogger({ app: 'a', level: 'verbose', format: 'json', destination: stream }).level).toBe('trace');
  });

  it('adds the event fields of the message being handled, across awaits, and only inside', async () => {
    const { stream, lines } = capture();
    const logger = createLogger({ app: 'a', level: 'log', format: 'json', destination: stream });
    await withLogFields({ correlationId: 'c-1', eventId: 'e-1', eventType: 'user.registered.v1' }, async () => {
      await new Promise((resolve) => setImmediate(resolve));
      logger.info('inside');
    });
    logger.info('outside');
    const [inside, outside] = lines();
    expect(inside).toMatchObject({ correlationId: 'c-1', eventId: 'e-1', eventType: 'user.registered.v1' });
    expect(outside).not.toHaveProperty('eventId');
  });

  it('redacts passwords, hashes, tokens and credentials wherever an object carries them', () => {
    const { stream, lines } = capture();
    const logger = createLogger({ app: 'a', level: 'log', format: 'json', destination: stream });
    logger.info(
      { password: 'p1', body: { password: 'p2', passwordHash: '$argon2id$x' }, headers: { authorization: 'Bearer t' } },
      'careless',
    );
    const text = JSON.stringify(lines());
    for (const secret of ['p1', 'p2', '$argon2id$x', 'Bearer t']) expect(text).not.toContain(secret);
    expect(lines()[0]).toMatchObject({ password: '[redacted]', body: { password: '[redacted]' } });
  });

  it('logs an error as class, message, code and stack: never the query parameters or row a driver error holds', () => {
    const { stream, lines } = capture();
    const logger = createLogger({ app: 'a', level: 'log', format: 'json', destination: stream });
    const error = Object.assign(new Error('duplicate key value violates unique constraint "users_email_key"'), {
      code: '23505',
      query: 'INSERT INTO users (email, password_hash) VALUES ($1, $2)',
      parameters: ['ann@example.com', '$argon2id$v=19$secret'],
      detail: 'Failing row contains (ann@example.com, $argon2id$v=19$secret)',
    });
    logger.error({ err: error }, 'registration failed');
    const [line] = lines();
    expect(line.err).toMatchObject({ type: 'Error', code: '23505', message: expect.stringContaining('duplicate key') });
    expect(JSON.stringify(line)).not.toMatch(/argon2|ann@example\.com|INSERT/);
  });

  it("leaves a message's fields behind for work started outside it", () => {
    const { stream, lines } = capture();
    const logger = createLogger({ app: 'a', level: 'log', format: 'json', destination: stream });
    withLogFields({ eventId: 'e-1' }, () => outsideLogContext(() => logger.info('socket line')));
    expect(lines()[0]).not.toHaveProperty('eventId');
  });
});
