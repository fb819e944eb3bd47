import { Redis, ReplyError as UntypedReplyError } from 'ioredis';
import { CacheGenerationChangedError, isRedisUnavailable } from './redis-errors';
import { createRedis } from './redis';

/** ioredis exports its server error reply class untyped. */
const ReplyError = UntypedReplyError as new (message: string) => Error;

describe('isRedisUnavailable', () => {
  it('a command to a Redis nobody listens on fails as unavailable, at once', async () => {
    // Port 1 on loopback: connection refused.
    const redis: Redis = createRedis(
      { REDIS_URL: 'redis://127.0.0.1:1', REDIS_COMMAND_TIMEOUT_MS: 200, POST_CACHE_TTL_SECONDS: 60 },
      'spec',
    );
    try {
      const started = Date.now();
      const error = await redis.get('x').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Error);
      expect(isRedisUnavailable(error)).toBe(true);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      redis.disconnect();
    }
  });

  it.each([
    ['closed connection', new Error('Connection is closed.')],
    ['no offline queue', new Error("Stream isn't writeable and enableOfflineQueue options is false")],
    ['command timeout', new Error('Command timed out')],
    ['socket reset', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['loading', new ReplyError('LOADING Redis is loading the dataset in memory')],
    ['replica', new ReplyError("READONLY You can't write against a read only replica.")],
    ['busy script', new ReplyError('BUSY Redis is busy running a script.')],
    [
      'persistence failing',
      new ReplyError(
        'MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.',
      ),
    ],
    ['restarted twice', new CacheGenerationChangedError('restarted twice')],
  ])('%s → unavailable', (_, error) => {
    expect(isRedisUnavailable(error)).toBe(true);
  });

  it.each([
    ['script error', new ReplyError('ERR user_script:3: attempt to compare nil with number')],
    ['wrong type', new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value')],
    ['a bug of ours', new TypeError("Cannot read properties of undefined (reading 'slice')")],
    ['not an error', 'Connection is closed.'],
  ])('%s → the command’s own failure', (_, error) => {
    expect(isRedisUnavailable(error)).toBe(false);
  });
});
