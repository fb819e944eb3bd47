import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { APP_CONFIG_SCHEMAS, APP_PORTS, databaseToolConfigSchema, kafkaToolConfigSchema } from '@app/config';
import { CONFIG_DOCS_FILE, defaultOf, isSecret, renderConfigDocs } from '../scripts/config-docs';

const SCHEMAS: Record<string, z.ZodObject> = {
  ...APP_CONFIG_SCHEMAS,
  'outbox CLI': databaseToolConfigSchema,
  'dlq CLI': kafkaToolConfigSchema,
};

/** The block docs/configuration.md has for one variable: from its heading to the next. */
function blockOf(doc: string, name: string): string {
  const start = doc.indexOf(`\n### ${name}\n`);
  expect(start).toBeGreaterThan(0);
  const end = doc.indexOf('\n### ', start + 1);
  return doc.slice(start, end === -1 ? undefined : end);
}

/** docs/configuration.md is what the config schemas say now, and says it of every setting. */
describe('configuration reference', () => {
  const committed = readFileSync(CONFIG_DOCS_FILE, 'utf8');

  it('is current: regenerating it from libs/config changes nothing (else run `npm run config:docs`)', () => {
    expect(committed).toBe(renderConfigDocs());
  });

  it('every setting of every app and tool has a description of its own', () => {
    const missing: string[] = [];
    for (const [app, schema] of Object.entries(SCHEMAS)) {
      for (const [name, field] of Object.entries<z.ZodType>(schema.shape)) {
        const description = field.description?.trim() ?? '';
        if (description.length < 10) missing.push(`${app}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('documents every variable an app reads, with its type, its default and the apps that read it', () => {
    const names = new Set(Object.values(APP_CONFIG_SCHEMAS).flatMap((schema) => Object.keys(schema.shape)));
    const headings = [...committed.matchAll(/^### (\S+)$/gm)].map((m) => m[1]);
    expect(headings.sort()).toEqual([...names].sort());
    expect(blockOf(committed, 'KAFKA_TOPIC_PARTITIONS')).toContain(
      '- type: integer 1–1000\n- default: `3`\n- read by: all apps',
    );
    expect(blockOf(committed, 'LOG_LEVEL')).toContain('one of `error`, `warn`, `log`, `debug`, `verbose`');
    expect(blockOf(committed, 'SMTP_SEND_DEADLINE_MS')).toContain('- read by: email-service\n');
    // PORT's default differs per app: each app's own port, as APP_PORTS has it.
    const port = blockOf(committed, 'PORT').replace(/\n\s+/g, ' ');
    for (const [app, number] of Object.entries(APP_PORTS)) expect(port).toContain(`\`${number}\` (${app})`);
  });

  it('shows no value for a secret, and no secret has a default', () => {
    const secrets = Object.values(SCHEMAS).flatMap((schema) =>
      Object.entries(schema.shape as Record<string, z.ZodType>).filter(([name]) => isSecret(name)),
    );
    expect(secrets.map(([name]) => name)).toEqual(
      expect.arrayContaining(['KAFKA_SASL_PASSWORD', 'SMTP_PASSWORD', 'AUTH_SIGNING_KEYS']),
    );
    for (const [name, field] of secrets) {
      expect([name, defaultOf(field)]).toEqual([name, undefined]);
      expect(blockOf(committed, name)).toMatch(/\n- default: none \(a secret/);
    }
  });
});
