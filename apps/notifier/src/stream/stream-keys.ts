import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { FactoryProvider, Logger } from '@nestjs/common';
import { APP_CONFIG, NotifierConfig } from '@app/config';
import type { Positions } from '@app/messaging';
import { BadEventIdError, decodePositions, encodePositions, StreamScope } from './positions';

/** Bytes of HMAC-SHA256 kept in an id or a cookie: 128 bits, base64url (22 characters). */
const MAC_BYTES = 16;

/** What a session cookie holds once opened: the user, and when the access token it was made from expires. */
export interface StreamSession {
  userId: string;
  expiresAt: Date;
}

/**
 * Makes what the notifier gives out unforgeable, with NOTIFIER_STREAM_SECRET (the same on every replica):
 *
 * - Event ids: `<positions>~<mac>`, the MAC over the positions and the stream's name (`public`, `user:<id>`). A
 *   client resumes only from positions a replica gave it, on the stream it was given on: an id it made up, changed,
 *   or took from another user's stream is refused.
 * - Session cookies: `<userId>.<expiry>.<mac>`: the signed-in user of the per-user stream, until the access token it
 *   was made from expires. The cookie grants reading that stream and nothing else (it is not the access token).
 */
export class StreamKeys {
  constructor(private readonly secret: Buffer) {}

  signId(stream: StreamScope, positions: Positions): string {
    const text = encodePositions(positions, stream.topics);
    return `${text}~${this.mac('event-id', stream.name, text)}`;
  }

  /** The positions of an id given out on `stream`; BadEventIdError when it was not. */
  verifyId(stream: StreamScope, id: string): Positions {
    if (id.length > 4096) throw new BadEventIdError('is longer than any id this notifier gives out');
    const at = id.lastIndexOf('~');
    if (at < 0) throw new BadEventIdError('is not signed: resume only from an id this stream sent');
    const text = id.slice(0, at);
    if (!this.holds(id.slice(at + 1), this.mac('event-id', stream.name, text))) {
      throw new BadEventIdError('was not given out on this stream (its signature does not hold)');
    }
    return decodePositions(text, stream.topics);
  }

  sealSession(session: StreamSession): string {
    const text = `${session.userId}.${Math.floor(session.expiresAt.getTime() / 1000)}`;
    return `${text}.${this.mac('session', '', text)}`;
  }

  /** The session a cookie holds, or undefined when it is malformed, forged or expired. */
  openSession(value: string, now = Date.now()): StreamSession | undefined {
    const match = /^([0-9a-f-]{36})\.(\d{1,12})\.([A-Za-z0-9_-]{1,64})$/.exec(value);
    if (!match) return undefined;
    const [, userId, expiry, mac] = match;
    if (!this.holds(mac, this.mac('session', '', `${userId}.${expiry}`))) return undefined;
    const expiresAt = new Date(Number(expiry) * 1000);
    return expiresAt.getTime() > now ? { userId, expiresAt } : undefined;
  }

  private mac(purpose: string, stream: string, text: string): string {
    return createHmac('sha256', this.secret)
      .update(`notifier.${purpose}.v1\n${stream}\n${text}`)
      .digest()
      .subarray(0, MAC_BYTES)
      .toString('base64url');
  }

  private holds(given: string, expected: string): boolean {
    const [a, b] = [Buffer.from(given), Buffer.from(expected)];
    return a.length === b.length && timingSafeEqual(a, b);
  }
}

/** The replica's StreamKeys: from NOTIFIER_STREAM_SECRET, or a secret made at boot outside production (warned). */
export const streamKeysProvider: FactoryProvider<StreamKeys> = {
  provide: StreamKeys,
  inject: [APP_CONFIG],
  useFactory: (config: NotifierConfig) => {
    if (config.NOTIFIER_STREAM_SECRET) return new StreamKeys(Buffer.from(config.NOTIFIER_STREAM_SECRET, 'utf8'));
    new Logger('StreamKeys').warn(
      'NOTIFIER_STREAM_SECRET is unset: event ids and session cookies are signed with a secret made at boot; other ' +
        'replicas refuse them, and so does this one after a restart (set the same NOTIFIER_STREAM_SECRET on every ' +
        'replica)',
    );
    return new StreamKeys(randomBytes(32));
  },
};
