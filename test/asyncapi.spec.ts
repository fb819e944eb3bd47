import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Parser } from '@asyncapi/parser';
import { APP_CONFIG_SCHEMAS, consoleEnv } from '@app/config';
import { EVENT_TYPES, EventRegistry, EventType } from '@app/contracts';
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

  it('names the consumer groups the apps declare, the console shows each durable one, every consumed type has a producer', () => {
    const consumers = consumersOfApps();
    const groups = consumers.map((c) => `${c.app}:${c.group}:${c.types.join(',')}`);
    expect(groups).toContain('email-service:email-service:email.requested.v1');
    expect(groups).toContain('cache-invalidator:cache-invalidator:post.updated.v1,post.deleted.v1');
    expect(groups).toContain('notifier:notifier.<instance>:' + LIVE_TYPES);
    // The console's default list (CONSOLE_GROUPS) is kept by hand: a group the apps add must be added there too.
    const durable = new Set(consumers.filter((c) => c.kind !== 'per-instance').map((c) => c.group));
    expect([...durable].sort()).toEqual([...consoleEnv.CONSOLE_GROUPS.parse(undefined)].sort());
    // Each consumed type's producer, as the registry names it, is an app whose code passes that type to a call.
    const apps = Object.keys(APP_CONFIG_SCHEMAS);
    const missing = consumers.flatMap((consumer) =>
      consumer.types.flatMap((type) => {
        const producer = EventRegistry[type as EventType]?.producer;
        const produced = producer !== undefined && apps.includes(producer) && passesType(producer, type);
        return produced ? [] : [`${type} (consumed by ${consumer.app}): no producer ${producer ?? ''} sends it`];
      }),
    );
    expect(missing).toEqual([]);
  });
});

const LIVE_TYPES = [
  'post.created.v1',
  'post.updated.v1',
  'post.deleted.v1',
  'video.progress.v1',
  'video.processed.v1',
  'video.failed.v1',
  'email.sent.v1',
].join(',');

/** Whether an app's source (specs and handler declarations aside) passes `type` as an argument: `f(…, 'type', …)`. */
function passesType(app: string, type: string): boolean {
  const dir = join(__dirname, '..', 'apps', app, 'src');
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter(
    (file) => file.endsWith('.ts') && !file.endsWith('.spec.ts'),
  );
  return files.some((file) =>
    readFileSync(join(dir, file), 'utf8')
      .replace(/@HandleEvent\([^)]*\)/g, '')
      .includes(`'${type}',`),
  );
}
