import { randomUUID } from 'node:crypto';
import { BadEventIdError, decodePositions, PUBLIC_STREAM, userStream } from './positions';
import { StreamKeys } from './stream-keys';

const keys = new StreamKeys(Buffer.from('a-secret-of-at-least-thirty-two-characters'));
const at = { posts: [15, 7, 3] };

describe('StreamKeys: event ids', () => {
  it('signs positions for a stream and gives them back from the id', () => {
    const id = keys.signId(PUBLIC_STREAM, at);
    expect(id).toMatch(/^posts:15,7,3~[A-Za-z0-9_-]{22}$/);
    expect(keys.verifyId(PUBLIC_STREAM, id)).toEqual(at);
    const alice = userStream(randomUUID());
    const mine = keys.signId(alice, { 'video-processed': [4, 0], 'emails-sent': [1] });
    expect(mine).toMatch(/^video-processed:4,0;emails-sent:1~/);
    expect(keys.verifyId(alice, mine)).toEqual({ 'video-processed': [4, 0], 'emails-sent': [1] });
  });

  it('refuses an id that is unsigned, changed, signed with another secret, or from another stream', () => {
    const id = keys.signId(PUBLIC_STREAM, at);
    const mac = id.slice(id.indexOf('~'));
    const refused = (stream: Parameters<StreamKeys['verifyId']>[0], text: string, by = keys) => {
      try {
        by.verifyId(stream, text);
        return undefined;
      } catch (error) {
        expect(error).toBeInstanceOf(BadEventIdError);
        return (error as Error).message;
      }
    };
    // What anyone could type: the whole history from offset 0.
    expect(refused(PUBLIC_STREAM, 'posts:0,0,0')).toMatch(/not signed/);
    expect(refused(PUBLIC_STREAM, `posts:0,0,0${mac}`)).toMatch(/signature does not hold/);
    expect(refused(PUBLIC_STREAM, `${id}x`)).toMatch(/signature does not hold/);
    expect(refused(PUBLIC_STREAM, `${id.slice(0, -1)}`)).toMatch(/signature does not hold/);
    expect(refused(PUBLIC_STREAM, id, new StreamKeys(Buffer.from('another-secret-of-thirty-two-chars!')))).toMatch(
      /signature does not hold/,
    );
    const [alice, bob] = [userStream(randomUUID()), userStream(randomUUID())];
    const hers = keys.signId(alice, { 'video-processed': [0], 'emails-sent': [0] });
    expect(refused(bob, hers)).toMatch(/signature does not hold/);
    expect(refused(PUBLIC_STREAM, hers)).toMatch(/signature does not hold/);
    expect(refused(alice, id)).toMatch(/signature does not hold/);
    expect(refused(PUBLIC_STREAM, 'x'.repeat(5000))).toMatch(/longer/);
    expect(refused(alice, hers)).toBeUndefined();
  });

  it('decodes only the topics of the stream, each once', () => {
    expect(() => decodePositions('posts:1;evil:2', ['posts'])).toThrow(/'evil'/);
    expect(() => decodePositions('posts:1;posts:2', ['posts'])).toThrow(/twice/);
    expect(() => decodePositions('video-processed:1', ['video-processed', 'emails-sent'])).toThrow(/must name/);
    expect(() => decodePositions('posts:1,x', ['posts'])).toThrow(/malformed/);
    expect(decodePositions('posts:', ['posts'])).toEqual({ posts: [] });
  });
});

describe('StreamKeys: session cookies', () => {
  it("holds the user until the token's expiry, and nothing forged or ended", () => {
    const userId = randomUUID();
    const expiresAt = new Date(Math.floor(Date.now() / 1000) * 1000 + 60_000);
    const cookie = keys.sealSession({ userId, expiresAt });
    expect(keys.openSession(cookie)).toEqual({ userId, expiresAt });
    expect(keys.openSession(cookie, expiresAt.getTime())).toBeUndefined();
    const [, expiry, mac] = cookie.split('.');
    expect(keys.openSession(`${randomUUID()}.${expiry}.${mac}`)).toBeUndefined();
    expect(keys.openSession(`${userId}.${Number(expiry) + 3600}.${mac}`)).toBeUndefined();
    expect(keys.openSession('garbage')).toBeUndefined();
    // An event id's MAC is not a session's: the purposes are kept apart.
    expect(new StreamKeys(Buffer.from('another-secret-of-thirty-two-chars!')).openSession(cookie)).toBeUndefined();
  });
});
