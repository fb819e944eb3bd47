/**
 * Writes docs/configuration.md, the reference of every setting, from the zod fields themselves: name, type and range,
 * default, the apps that read it (libs/config/src/apps.ts) and its `.describe()` text. `npm run config:docs` rewrites
 * it; a spec checks it is current and that no field lacks a description.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import {
  APP_CONFIG_SCHEMAS,
  consoleEnv,
  authIssueEnv,
  authVerifyEnv,
  consumerEnv,
  databaseEnv,
  ffmpegEnv,
  httpEnv,
  inboxEnv,
  kafkaEnv,
  logEnv,
  mediaEnv,
  notifierEnv,
  redisEnv,
  videoUploadEnv,
} from '@app/config';

export const CONFIG_DOCS_FILE = join(__dirname, '..', 'docs', 'configuration.md');

type App = keyof typeof APP_CONFIG_SCHEMAS;
const APPS = Object.keys(APP_CONFIG_SCHEMAS) as App[];
const WIDTH = 120;

/** Names whose values are credentials: never shown with a value, default or example. */
export const isSecret = (name: string): boolean => /PASSWORD|SECRET|_TOKEN$|SIGNING_KEYS/.test(name);

/** The shared groups of fields.ts, in the order the reference shows them; an app's own fields follow, by app. */
const GROUPS: { title: string; about: string; fields: Record<string, unknown> }[] = [
  { title: 'Kafka', about: 'The connection to the brokers and the topics the system creates.', fields: kafkaEnv },
  { title: 'Logging', about: 'What each app logs, and how.', fields: logEnv },
  { title: 'HTTP', about: 'Each app’s HTTP server: its routes, health, readiness and metrics.', fields: httpEnv(0) },
  {
    title: 'Consumers',
    about: 'How a consumer group takes its partitions, retries a failure and shuts down.',
    fields: consumerEnv,
  },
  { title: 'Database', about: 'PostgreSQL, for the apps that have a database.', fields: databaseEnv },
  { title: 'Inbox', about: 'The consumers’ PostgreSQL inboxes: what makes a redelivery a no-op.', fields: inboxEnv },
  {
    title: 'Redis',
    about: 'The post cache users-api reads through and cache-invalidator keeps correct.',
    fields: redisEnv,
  },
  { title: 'Media', about: 'Where videos and their renditions are kept.', fields: mediaEnv },
  { title: 'Video uploads', about: 'What users-api accepts as a video upload.', fields: videoUploadEnv },
  { title: 'Video processing', about: 'How the video processor runs ffmpeg and holds a job.', fields: ffmpegEnv },
  { title: 'Notifier', about: 'The notifier’s Server-Sent Events stream.', fields: notifierEnv },
  {
    title: 'Console',
    about: 'The web console (apps/console): its page, system view and dead-letter tools.',
    fields: consoleEnv,
  },
  {
    title: 'Sign-in',
    about: 'Access tokens: users-api signs them, every app verifies them against its public keys.',
    fields: { ...authVerifyEnv, ...authIssueEnv },
  },
];

export interface FieldDoc {
  name: string;
  type: string;
  /** Per app that reads it: the default as text, or undefined when unset by default. */
  defaults: Map<App, string | undefined>;
  description: string | undefined;
}

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  shape?: Record<string, z.ZodType>;
  entries?: Record<string, string>;
  values?: unknown[];
  format?: string;
  protocol?: RegExp;
  defaultValue?: unknown;
}

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;
const code = (text: string) => `\`${text}\``;
const BOOLEAN = ['true', 'false', '1', '0', 'yes', 'no'];

/** What a value must look like, in words: the schema as the environment gives it (text) and what it turns into. */
export function typeOf(schema: z.ZodType): string {
  const def = defOf(schema);
  switch (def.type) {
    case 'default':
    case 'prefault':
    case 'optional':
      return typeOf(def.innerType!);
    case 'pipe': {
      const [from, to] = [def.in!, def.out!];
      // A transform only converts (text to boolean, a lower-cased name): the input says what is accepted.
      if (defOf(to).type === 'transform') return typeOf(from);
      // An object built from one entry of text (`name=url`): its fields, in order, are the entry's parts.
      if (defOf(to).type === 'object') return code(Object.keys(defOf(to).shape!).join('='));
      return typeOf(to);
    }
    case 'enum': {
      const values = Object.values(def.entries!);
      if (values.length === BOOLEAN.length && values.every((v) => BOOLEAN.includes(v))) return 'boolean';
      return `one of ${values.map(code).join(', ')}`;
    }
    case 'number': {
      const { type, minimum, maximum } = z.toJSONSchema(schema) as { type: string; minimum?: number; maximum?: number };
      return minimum !== undefined && maximum !== undefined ? `${type} ${minimum}–${maximum}` : type;
    }
    case 'string': {
      if (def.format === 'url') {
        const scheme = def.protocol ? def.protocol.source.replace(/^\^|\$$/g, '') : '[a-z]+';
        return `${code(`${scheme}://…`)} URL`;
      }
      const { minLength, pattern } = z.toJSONSchema(schema) as { minLength?: number; pattern?: string };
      const parts = ['text'];
      if (minLength && minLength > 1) parts.push(`of at least ${minLength} characters`);
      // The digits of an integer are said by the number it turns into.
      if (pattern && pattern !== '^-?\\d+$') parts.push(`matching ${code(pattern)}`);
      return parts.join(' ');
    }
    case 'array':
      return `comma-separated list, each ${typeOf(def.element!)}`;
    case 'union':
      return def.options!.map(typeOf).join(' or ');
    case 'literal':
      return def.values!.map((v) => code(String(v))).join(' or ');
    default:
      return def.type;
  }
}

/** The default as one would write it in the environment; undefined when the field is unset by default. */
export function defaultOf(schema: z.ZodType): string | undefined {
  const def = defOf(schema);
  if (def.type !== 'default' && def.type !== 'prefault') return undefined;
  const value = def.defaultValue;
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** A default in backticks; a list's entries each on their own, so that a long list wraps between them. */
function shownDefault(field: FieldDoc, value: string | undefined): string {
  if (value === undefined) return 'unset';
  return field.type.startsWith('comma-separated') ? value.split(',').map(code).join(', ') : code(value);
}

/** Every field any app reads, in the order of the groups, then each app's own ones. */
export function configFields(): FieldDoc[] {
  const fields = new Map<string, FieldDoc>();
  for (const app of APPS) {
    for (const [name, schema] of Object.entries(APP_CONFIG_SCHEMAS[app].shape as Record<string, z.ZodType>)) {
      const field = fields.get(name) ?? { name, type: typeOf(schema), defaults: new Map(), description: undefined };
      field.defaults.set(app, isSecret(name) ? undefined : defaultOf(schema));
      field.description ??= schema.description;
      fields.set(name, field);
    }
  }
  return [...fields.values()];
}

/** `text` as lines of at most WIDTH characters, later ones indented by `indent` (a longer word stands alone). */
function wrap(text: string, indent = ''): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > WIDTH) {
      // A line that starts like a list item or a heading (`408.`, `-`) would read as one: take a word along.
      const carried = /^(\d+[.)]|[-+*>#])/.test(word) ? line.slice(line.lastIndexOf(' ') + 1) : '';
      lines.push(carried ? line.slice(0, line.lastIndexOf(' ')) : line);
      line = `${indent}${carried ? `${carried} ` : ''}${word}`;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

function appsOf(field: FieldDoc): string {
  const apps = [...field.defaults.keys()];
  return apps.length === APPS.length ? 'all apps' : apps.join(', ');
}

function defaultText(field: FieldDoc): string {
  if (isSecret(field.name)) return 'none (a secret: set it from a secret store)';
  const values = [...new Set(field.defaults.values())];
  if (values.length === 1) return shownDefault(field, values[0]);
  return [...field.defaults].map(([app, value]) => `${shownDefault(field, value)} (${app})`).join(', ');
}

function fieldBlock(field: FieldDoc): string[] {
  return [
    `### ${field.name}`,
    '',
    ...wrap(`- type: ${field.type}`, '  '),
    ...wrap(`- default: ${defaultText(field)}`, '  '),
    ...wrap(`- read by: ${appsOf(field)}`, '  '),
    '',
    ...wrap(field.description ?? 'No description.'),
    '',
  ];
}

export function renderConfigDocs(): string {
  const fields = configFields();
  const shown = new Set<string>();
  const sections: { title: string; about: string; fields: FieldDoc[] }[] = [];
  for (const group of GROUPS) {
    const names = Object.keys(group.fields);
    const own = names.flatMap((name) => fields.filter((f) => f.name === name));
    sections.push({ ...group, fields: own });
    names.forEach((name) => shown.add(name));
  }
  for (const app of APPS) {
    const own = fields.filter((f) => !shown.has(f.name) && f.defaults.has(app));
    own.forEach((f) => shown.add(f.name));
    if (own.length > 0) sections.push({ title: app, about: `Settings only ${app} reads.`, fields: own });
  }
  const out = [
    '<!-- Generated by `npm run config:docs` from libs/config/src (fields.ts, apps.ts). Do not edit. -->',
    '',
    '# Configuration reference',
    '',
    ...wrap(
      'Every app reads its settings from the environment and checks them at boot: a bad value stops the app with a ' +
        'message naming the variable. Empty values count as unset. A boolean is `true` or `false` (`1`/`0` and ' +
        '`yes`/`no` are taken too); a list is comma-separated. Settings that can never work together (SASL without ' +
        'credentials, TLS files without TLS, more in-sync replicas than replicas, a send deadline within the SMTP ' +
        'timeout) stop the boot too.',
    ),
    '',
    ...sections.flatMap((s) => [`## ${s.title}`, '', ...wrap(s.about), '', ...s.fields.flatMap(fieldBlock)]),
  ];
  return `${out.join('\n').trimEnd()}\n`;
}

if (require.main === module) {
  writeFileSync(CONFIG_DOCS_FILE, renderConfigDocs());
  process.stdout.write(`wrote ${CONFIG_DOCS_FILE}\n`);
}
