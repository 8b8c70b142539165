import os from 'node:os';
import { Client, Pool, type ClientBase, type ClientConfig, type PoolConfig } from 'pg';

/**
 * Connection settings for a postgres:// URL. A URL without a user name connects as the OS user,
 * as psql does; node-postgres would otherwise read $USER, which services and CI often lack.
 */
export function connectionConfig(databaseUrl: string): ClientConfig {
  const url = new URL(databaseUrl);
  // node-postgres lets values parsed from the URL override a separate `user` option.
  if (url.username === '') url.username = encodeURIComponent(process.env.PGUSER || os.userInfo().username);
  // JIT compiles each export query (tens of ms apiece, dozens of queries per export) and made
  // the export streams measurably slower; none of bulkflow's queries gains from it. A URL (or
  // PGOPTIONS) that sets options keeps its own.
  const jitOff = url.searchParams.has('options') || process.env.PGOPTIONS ? {} : { options: '-c jit=off' };
  return { connectionString: url.toString(), ...jitOff };
}

/**
 * A connection the server drops (a crash, a restart, a terminated backend) emits `error` on its
 * client; with no listener Node throws that event and the whole process dies. The pool listens
 * only while a client is idle, so a client held between queries (a transaction, a COPY being
 * written out) needs a listener of its own. Its next query then fails, and the pool discards it
 * on release.
 */
const ignoreConnectionLoss = (client: ClientBase) => client.on('error', () => undefined);

export function createPool(databaseUrl: string, options: Omit<PoolConfig, 'connectionString'> = {}): Pool {
  const pool = new Pool({ ...connectionConfig(databaseUrl), max: 10, ...options });
  pool.on('connect', ignoreConnectionLoss);
  // The pool passes an idle client's error on as its own, which would throw just the same.
  pool.on('error', () => undefined);
  return pool;
}

export function createClient(databaseUrl: string, options: Omit<ClientConfig, 'connectionString'> = {}): Client {
  const client = new Client({ ...connectionConfig(databaseUrl), ...options });
  ignoreConnectionLoss(client);
  return client;
}

/** The database named in `databaseUrl`, and a URL of the maintenance database on the same server. */
export function splitDatabaseUrl(databaseUrl: string): { name: string; maintenanceUrl: string } {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new Error(`DATABASE_URL names no database: ${databaseUrl}`);
  url.pathname = '/postgres';
  return { name, maintenanceUrl: url.toString() };
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Creates the database of `databaseUrl` when it does not exist (the embedded default's first start). */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const { name, maintenanceUrl } = splitDatabaseUrl(databaseUrl);
  const client = createClient(maintenanceUrl);
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
    } catch (err) {
      // Another process created it between our check and our CREATE.
      if ((err as { code?: string }).code !== '42P04') throw err;
      return false;
    }
    return true;
  } finally {
    await client.end();
  }
}

/** Drops a database, disconnecting its sessions first (PostgreSQL >= 13). */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const { name, maintenanceUrl } = splitDatabaseUrl(databaseUrl);
  const client = createClient(maintenanceUrl);
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}
