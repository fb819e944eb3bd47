import { randomUUID } from 'node:crypto';
import { createEnvelope } from './envelope';
import { eventJsonSchemas, InvalidEventError, parseEvent, validatePayload } from './registry';

const userId = randomUUID();
const welcome = { to: 'ann@example.com', template: 'welcome', data: { username: 'ann' }, userId } as const;

function reasonOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof InvalidEventError) return error.reason;
    throw error;
  }
  return 'accepted';
}

describe('event contracts', () => {
  it('round-trips a valid envelope with CloudEvents attributes', () => {
    const envelope = createEnvelope({
      type: 'email.requested.v1',
      source: 'users-api',
      data: welcome,
      correlationId: 'c-1',
    });
    const parsed = parseEvent(Buffer.from(JSON.stringify(envelope)));
    expect(parsed).toMatchObject({
      specversion: '1.0',
      type: 'email.requested.v1',
      source: 'users-api',
      correlationid: 'c-1',
    });
    expect(parsed.id).toBe(envelope.id);
    expect(parsed.data).toEqual(welcome);
  });

  it('defaults the correlation id to the event id', () => {
    const envelope = createEnvelope({ type: 'email.requested.v1', source: 'x', data: welcome });
    expect(envelope.correlationid).toBe(envelope.id);
  });

  it.each([
    ['not JSON', Buffer.from('{nope'), 'malformed-json'],
    ['an empty value', null, 'malformed-json'],
    ['JSON without the envelope', Buffer.from('{"hello":"world"}'), 'invalid-envelope'],
    [
      'an unknown type',
      Buffer.from(JSON.stringify(createEnvelope({ type: 'user.deleted.v9', source: 'x', data: {} }))),
      'unknown-type',
    ],
    [
      'a payload that breaks its schema',
      Buffer.from(
        JSON.stringify(createEnvelope({ type: 'email.requested.v1', source: 'x', data: { ...welcome, to: 'x' } })),
      ),
      'invalid-payload',
    ],
    [
      'a payload with an extra field',
      Buffer.from(
        JSON.stringify(
          createEnvelope({ type: 'email.requested.v1', source: 'x', data: { ...welcome, password: 'p' } }),
        ),
      ),
      'invalid-payload',
    ],
  ])('rejects %s', (_name, value, reason) => {
    expect(reasonOf(() => parseEvent(value))).toBe(reason);
  });

  const withEnvelope = (change: Record<string, unknown>) =>
    Buffer.from(
      JSON.stringify({
        ...createEnvelope({ type: 'email.requested.v1', source: 'users-api', data: welcome }),
        ...change,
      }),
    );

  it.each([
    ['a correlation id with CR/LF', { correlationid: 'c-1\r\nBcc: x@y.z' }],
    ['a correlation id with a space', { correlationid: 'c 1' }],
    ['a correlation id of 129 characters', { correlationid: 'c'.repeat(129) }],
    ['a source with a line feed', { source: 'users-api\nx' }],
    ['a subject with a control character', { subject: 'post\u0007' }],
    ['an id that is not a UUID', { id: 'x\r\n' }],
  ])('refuses an envelope with %s, like a bad payload', (_name, change) => {
    expect(reasonOf(() => parseEvent(withEnvelope(change)))).toBe('invalid-envelope');
  });

  it('refuses a value that is not valid UTF-8 rather than reading replacement characters', () => {
    const valid = withEnvelope({});
    const broken = Buffer.concat([valid.subarray(0, 20), Buffer.from([0xc3, 0x28]), valid.subarray(20)]);
    expect(reasonOf(() => parseEvent(broken))).toBe('malformed-json');
    expect(reasonOf(() => parseEvent(valid))).toBe('accepted');
  });

  it('refuses a CR/LF in a field that could reach a mail header', () => {
    expect(
      reasonOf(() => validatePayload('email.requested.v1', { ...welcome, data: { username: 'a\r\nBcc: x@y.z' } })),
    ).toBe('invalid-payload');
  });

  it('exports a JSON Schema per event type', () => {
    const schemas = eventJsonSchemas() as Record<string, { type?: string; anyOf?: unknown[]; oneOf?: unknown[] }>;
    expect(schemas['user.registered.v1']).toMatchObject({ type: 'object' });
    expect(JSON.stringify(schemas['user.registered.v1'])).not.toContain('password');
    expect(JSON.stringify(schemas['email.requested.v1'])).toContain('welcome');
  });
});
