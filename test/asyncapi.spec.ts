import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
import { EVENT_TYPES } from '@app/contracts';
import { ASYNCAPI_FILE, consumersOfApps, renderAsyncApi } from '../scripts/asyncapi';

/** docs/asyncapi.yaml is what the code says now, and a valid AsyncAPI 3.0 document. */
describe('AsyncAPI document', () => {
  const committed = readFileSync(ASYNCAPI_FILE, 'utf8');

  it('is current: regenerating it from the contracts and the apps changes nothing (else run `npm run asyncapi`)', () => {
    expect(committed).toBe(renderAsyncApi());
  });

  it('parses as AsyncAPI 3.0 without errors, with every event type as a message', async () => {
    const { document, diagnostics } = await new Parser().parse(committed);
    const errors = diagnostics.filter((d) => Number(d.severity) === 0).map((d) => `${d.path.join('.')}: ${d.message}`);
    expect(errors).toEqual([]);
    expect(document?.version()).toBe('3.0.0');
    expect(
      document
        ?.messages()
        .all()
        .map((m) => m.name())
        .sort(),
    ).toEqual([...EVENT_TYPES].sort());
  });

  it('names the consumer groups the apps declare, and every consumed type has a producer', () => {
    const groups = consumersOfApps().map((c) => `${c.app}:${c.group}:${c.types.join(',')}`);
    expect(groups).toContain('email-service:email-service:email.requested.v1');
    expect(groups).toContain('cache-invalidator:cache-invalidator:post.updated.v1,post.deleted.v1');
    for (const consumer of consumersOfApps()) {
      for (const type of consumer.types) expect(EVENT_TYPES).toContain(type);
      expect(committed).toContain(`groupId:\n          type: string\n          enum:\n            - ${consumer.group}`);
    }
  });
});
