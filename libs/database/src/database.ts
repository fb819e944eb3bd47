import { Logger } from '@nestjs/common';
import { Client } from 'pg';
import { DataSource, DataSourceOptions, EntitySchema, MigrationInterface } from 'typeorm';
import { clientQueryTimeoutMs } from '@app/config';
import { BoundedClient } from './bounded-client';

type EntityTarget = string | (abstract new (...args: never[]) => unknown) | EntitySchema;
type MigrationClass = new () => MigrationInterface;

export interface AppDatabaseOptions {
  url: string;
  /** The PostgreSQL schema this app owns; its tables and its migrations table live there. */
  schema: string;
  entities: EntityTarget[];
  migrations: MigrationClass[];
  poolSize?: number;
  /** PostgreSQL ends a session idle inside a transaction this long (its locks go with it). */
  idleTransactionTimeoutMs?: number;
  /**
   * PostgreSQL cancels a statement running longer (statement_timeout); the client gives up on an answer that does
   * not come a little later (`clientQueryTimeoutMs`) and drops that connection. 0: unbounded (migrations).
   */
  statementTimeoutMs?: number;
  applicationName?: string;
}

/** Keepalive probes start after this long of silence on a pooled connection, so a dead peer is found while idle. */
const KEEPALIVE_DELAY_MS = 10_000;

const logger = new Logger('Database');

/** Creates the database named in the URL when it does not exist (a fresh machine), tolerating a concurrent creator. */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!name) throw new Error('DATABASE_URL names no database');
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
        logger.log(`created database ${name}`);
      } catch (error) {
        // 42P04 duplicate_database, 23505 unique_violation: another process created it first.
        const code = (error as { code?: string }).code;
        if (code !== '42P04' && code !== '23505') throw error;
      }
    }
  } finally {
    await client.end();
  }
}

export function dataSourceOptions(options: AppDatabaseOptions): DataSourceOptions {
  const statementTimeoutMs = options.statementTimeoutMs ?? 30_000;
  const bounds =
    statementTimeoutMs > 0
      ? { statement_timeout: statementTimeoutMs, query_timeout: clientQueryTimeoutMs(statementTimeoutMs) }
      : {};
  return {
    type: 'postgres',
    url: options.url,
    schema: options.schema,
    entities: options.entities,
    migrations: options.migrations,
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'all',
    synchronize: false,
    migrationsRun: false,
    applicationName: options.applicationName,
    // A pooler or server that does not answer a new connection is given up on like a statement.
    connectTimeoutMS: statementTimeoutMs > 0 ? clientQueryTimeoutMs(statementTimeoutMs) : undefined,
    extra: {
      Client: BoundedClient,
      max: options.poolSize ?? 10,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
      idle_in_transaction_session_timeout: options.idleTransactionTimeoutMs ?? 60_000,
      ...bounds,
    },
  };
}

/**
 * Creates the schema and runs pending migrations. Replicas booting together serialize on an advisory
 * lock, so each migration runs exactly once.
 */
export async function migrate(dataSource: DataSource, schema: string): Promise<void> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock(hashtext($1))', [`migrations:${schema}`]);
    await runner.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    const applied = await dataSource.runMigrations({ transaction: 'all' });
    for (const migration of applied) logger.log(`applied migration ${schema}.${migration.name}`);
  } finally {
    await runner.query('SELECT pg_advisory_unlock(hashtext($1))', [`migrations:${schema}`]).catch(() => undefined);
    await runner.release();
  }
}

/** PostgreSQL 14 brought `idle_session_timeout`, which ends the lock session of a frozen outbox relay. */
async function requireVersion(dataSource: DataSource): Promise<void> {
  const [row] = await dataSource.query<{ server_version_num: string; server_version: string }[]>(
    `SELECT current_setting('server_version_num') AS server_version_num, current_setting('server_version') AS server_version`,
  );
  if (Number(row.server_version_num) < 140000) {
    throw new Error(`PostgreSQL 14 or newer is required (the server at DATABASE_URL runs ${row.server_version})`);
  }
}

/**
 * Ensures the database, brings the app's schema to the latest migration and opens the app's pool. Migrations run on a
 * connection of their own without a statement bound: a migration may rewrite a large table, and a replica waits on
 * the migration lock for as long as another one migrates.
 */
export async function openAppDatabase(options: AppDatabaseOptions): Promise<DataSource> {
  await ensureDatabase(options.url);
  // Two connections: one holds the migration lock while the other runs the migrations.
  const migrator = new DataSource(dataSourceOptions({ ...options, poolSize: 2, statementTimeoutMs: 0 }));
  await migrator.initialize();
  try {
    await requireVersion(migrator);
    await migrate(migrator, options.schema);
  } finally {
    await migrator.destroy();
  }
  const dataSource = new DataSource(dataSourceOptions(options));
  await dataSource.initialize();
  return dataSource;
}

/** PostgreSQL error codes the apps branch on. */
export const PgErrorCode = {
  UniqueViolation: '23505',
  ForeignKeyViolation: '23503',
  LockNotAvailable: '55P03',
} as const;

export function pgErrorOf(error: unknown): { code?: string; constraint?: string } {
  const driverError = (error as { driverError?: unknown }).driverError ?? error;
  return driverError ?? {};
}

/**
 * Deletes the rows `where` selects in chunks of `chunk`, so no statement holds many locks or runs long; for
 * pruning by age. `table` is a quoted, schema-qualified name; `key` the columns that identify a row.
 */
export async function deleteInChunks(
  dataSource: DataSource,
  table: string,
  key: string,
  where: string,
  parameters: unknown[],
  chunk = 5000,
): Promise<number> {
  let deleted = 0;
  for (;;) {
    const [, count] = await dataSource.query<[unknown, number]>(
      `DELETE FROM ${table} WHERE (${key}) IN (SELECT ${key} FROM ${table} WHERE ${where} LIMIT ${chunk})`,
      parameters,
    );
    deleted += count;
    if (count < chunk) return deleted;
  }
}
