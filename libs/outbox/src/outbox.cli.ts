import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { databaseToolConfigSchema, loadConfigOrExit } from '@app/config';
import { OutboxRepository, ParkedRow } from './outbox.repository';

const USAGE = `usage: npm run outbox -- <command> [options]

commands:
  list     parked rows: rows the broker refused (too large, a deleted or forbidden topic), and how many later rows
           of the same topic and key wait behind each
  retry    un-park rows (--id <row id>, repeatable, or --all): the relay tries them again at once
  drop     delete parked rows for good (--id <row id>, repeatable, or --all; needs --yes); prints each one first,
           and the rows waiting behind them are published

options:  --schema <schema> (default users_api)  --json (list as JSON lines)
Database from DATABASE_URL (default postgres://postgres@127.0.0.1:5432/kafka_nest).`;

/** The ids asked for that are not parked rows, each with what it is instead; empty when every one is. */
async function notParked(outbox: OutboxRepository, ids: string[] | 'all', found: ParkedRow[]): Promise<string[]> {
  if (ids === 'all') return [];
  const missing = ids.filter((id) => !found.some((row) => String(row.id) === id));
  if (missing.length === 0) return [];
  const rows = await outbox.states(missing);
  return missing.map((id) => {
    const row = rows.find((r) => r.id === id);
    if (!row) return `#${id}: no such row in ${outbox.table}`;
    return `#${id}: not parked (${row.published ? 'already published' : 'pending: the relay sends it anyway'})`;
  });
}

function line(row: ParkedRow): string {
  return [
    `#${row.id}`,
    row.parked_at.toISOString(),
    row.event_type,
    row.event_id,
    `→ ${row.topic} key ${row.message_key}`,
    `${row.bytes} bytes`,
    `${row.attempts} attempt(s)`,
    `${row.held} waiting behind`,
    row.last_error ?? '',
  ].join('  ');
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      schema: { type: 'string', default: 'users_api' },
      id: { type: 'string', multiple: true },
      all: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      yes: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (!/^[a-z_][a-z0-9_]*$/.test(values.schema)) {
    process.stderr.write(`--schema must be a plain schema name\n`);
    return 2;
  }
  const ids = values.id ?? [];
  if (ids.some((id) => !/^\d+$/.test(id))) {
    process.stderr.write(`--id takes a row id (a number, as printed by list)\n`);
    return 2;
  }
  const selection: string[] | 'all' = values.all ? 'all' : ids;
  if (command !== 'list' && !values.all && ids.length === 0) {
    process.stderr.write(`${command} needs --id <row id> or --all\n`);
    return 2;
  }
  const config = loadConfigOrExit('outbox', databaseToolConfigSchema);
  const db = new Client({ connectionString: config.DATABASE_URL, application_name: 'outbox-cli' });
  const outbox = new OutboxRepository(db, values.schema);
  const table = outbox.table;
  await db.connect();
  try {
    switch (command) {
      case 'list': {
        const rows = await outbox.parked('all');
        for (const row of rows) process.stdout.write(`${values.json ? JSON.stringify(row) : line(row)}\n`);
        process.stderr.write(`${rows.length} parked row(s) in ${table}\n`);
        return 0;
      }
      case 'retry': {
        const rows = await outbox.parked(selection);
        const problems = await notParked(outbox, selection, rows);
        if (problems.length > 0) {
          process.stderr.write(`${problems.join('\n')}\nnothing changed\n`);
          return 1;
        }
        await outbox.unpark(rows.map((row) => row.id));
        for (const row of rows) process.stdout.write(`retrying ${line(row)}\n`);
        process.stderr.write(`${rows.length} row(s) un-parked; the relay sends them next\n`);
        return 0;
      }
      case 'drop': {
        if (!values.yes) {
          process.stderr.write(`drop deletes the selected parked rows for good; add --yes to confirm\n`);
          return 2;
        }
        const rows = await outbox.parked(selection);
        const problems = await notParked(outbox, selection, rows);
        if (problems.length > 0) {
          process.stderr.write(`${problems.join('\n')}\nnothing deleted\n`);
          return 1;
        }
        for (const row of rows) process.stdout.write(`dropping ${JSON.stringify(await outbox.excerpt(row.id))}\n`);
        await outbox.dropParked(rows.map((row) => row.id));
        process.stderr.write(`${rows.length} parked row(s) deleted from ${table}\n`);
        return 0;
      }
      default:
        process.stderr.write(`unknown command '${command}'\n${USAGE}\n`);
        return 2;
    }
  } finally {
    await db.end();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`outbox: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
