import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { databaseToolConfigSchema, loadConfigOrExit } from '@app/config';
import { SigningKeys } from '@app/auth';
import { SCHEMA } from '../schema';

const USAGE = `usage: npm run users -- <command> [argument]

commands:
  grant-admin <email>    give the account the admin role (the console's system view and its admin actions)
  revoke-admin <email>   take it back
  keys                   print a new signing key set for AUTH_SIGNING_KEYS (a secret: keep it out of the repository)

A role reaches the account's next access token: at its next sign-in or refresh (within AUTH_ACCESS_TOKEN_TTL_SECONDS).
Database from DATABASE_URL (default postgres://postgres@127.0.0.1:5432/kafka_nest).`;

async function setRole(email: string, role: 'admin' | 'user'): Promise<number> {
  const config = loadConfigOrExit('users', databaseToolConfigSchema);
  const db = new Client({ connectionString: config.DATABASE_URL, application_name: 'users-cli' });
  await db.connect();
  try {
    const { rows } = await db.query<{ id: string }>(
      `UPDATE "${SCHEMA}".users SET role = $2 WHERE email = $1 RETURNING id`,
      [email.trim().toLowerCase(), role],
    );
    if (rows.length === 0) {
      process.stderr.write(`no account with the email ${email}\n`);
      return 1;
    }
    process.stdout.write(`${email}: role ${role} (user ${rows[0].id}); it applies from the next sign-in or refresh\n`);
    return 0;
  } finally {
    await db.end();
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h', default: false } },
  });
  const [command, argument] = positionals;
  if (values.help || !command) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (command === 'keys') {
    process.stdout.write(`${JSON.stringify({ keys: [await SigningKeys.newJwk()] })}\n`);
    return 0;
  }
  if (command !== 'grant-admin' && command !== 'revoke-admin') {
    process.stderr.write(`unknown command ${command}\n${USAGE}\n`);
    return 2;
  }
  if (!argument || !argument.includes('@')) {
    process.stderr.write(`${command} needs the account's email address\n`);
    return 2;
  }
  return setRole(argument, command === 'grant-admin' ? 'admin' : 'user');
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
