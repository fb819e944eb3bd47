/**
 * What ioredis raises when Redis cannot serve anyone right now — not reachable, not ready, or refusing writes for a
 * reason of its own. Such a failure says nothing about the command: the same command succeeds once Redis is back.
 * Anything else (a script error, WRONGTYPE, a bug of ours) is the command's own failure.
 *
 * ioredis gives most of these no class of their own, so its fixed messages are matched; they are part of its API.
 */
const CLIENT_MESSAGES = [
  /^Connection is closed\./,
  /^Stream isn't writeable/,
  /^Command timed out/,
  /^Reached the max retries per request limit/,
];

/** Error replies of a Redis that is loading its data, a replica, failing over, or unable to persist. */
const SERVER_REPLY = /^(LOADING|READONLY|MASTERDOWN|BUSY|CLUSTERDOWN|TRYAGAIN|MISCONF|NOREPLICAS)\b/;

const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** Redis restarted again while a command was being retried in its new cache generation. */
export class CacheGenerationChangedError extends Error {
  override readonly name = 'CacheGenerationChangedError';
}

export function isRedisUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof CacheGenerationChangedError) return true;
  if (error.name === 'MaxRetriesPerRequestError' || error.name === 'AbortError') return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && SOCKET_CODES.has(code)) return true;
  if (error.name === 'ReplyError') return SERVER_REPLY.test(error.message);
  return CLIENT_MESSAGES.some((pattern) => pattern.test(error.message));
}
