import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataSource, DataSourceOptions, QueryRunner } from 'typeorm';
import { TEST_DATABASE_URL } from './env';

/** A database of its own for one int spec, on the test server: created before the spec, dropped after it. */
export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

async function onServer(statement: string): Promise<void> {
  const admin = new URL(TEST_DATABASE_URL);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

export async function createScratchDatabase(): Promise<ScratchDatabase> {
  const name = `kafka_nest_int_${randomBytes(4).toString('hex')}`;
  await onServer(`CREATE DATABASE "${name}"`);
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  // FORCE: a connection a failed test left open does not keep the database.
  return { url: url.toString(), drop: () => onServer(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

/** A scratch database with one schema made by `ddl`, a TypeORM DataSource and a plain client on it. */
export interface ScratchSchema {
  url: string;
  dataSource: DataSource;
  client: Client;
  close(): Promise<void>;
}

export async function createScratchSchema(
  schema: string,
  ddl: (runner: QueryRunner) => Promise<void>,
  options: { schema?: string; entities?: DataSourceOptions['entities']; extra?: Record<string, unknown> } = {},
): Promise<ScratchSchema> {
  const scratch = await createScratchDatabase();
  const dataSource = new DataSource({ ...options, type: 'postgres', url: scratch.url });
  await dataSource.initialize();
  const runner = dataSource.createQueryRunner();
  await runner.query(`CREATE SCHEMA "${schema}"`);
  await ddl(runner);
  await runner.release();
  const client = new Client({ connectionString: scratch.url });
  await client.connect();
  return {
    url: scratch.url,
    dataSource,
    client,
    close: async () => {
      await client.end();
      await dataSource.destroy();
      await scratch.drop();
    },
  };
}
