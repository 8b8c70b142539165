import type { Pool } from 'pg';
import { createPool, dropDatabase, ensureDatabase } from '../../src/store/database';
import { migrate } from '../../src/store/migrate';
import { testEnvironment } from '../harness/environment';

/** A pool on the run's test database, migrated. Each test file uses its own tenant for isolation. */
export async function migratedPool(max = 4): Promise<Pool> {
  const pool = createPool(testEnvironment.databaseUrl, { max });
  await migrate(pool);
  return pool;
}

export function uniqueTenant(label: string): string {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * A migrated database of the test file's own, for tests that lock whole tables: a lock on the
 * shared database would hold up (and be waited on by) the other test files running beside it.
 * `drop` after the pool has ended.
 */
export async function privateDatabase(label: string, max = 8): Promise<{ pool: Pool; drop(): Promise<void> }> {
  const url = new URL(testEnvironment.databaseUrl);
  url.pathname = `${url.pathname}_${label}_${process.pid}`;
  await dropDatabase(url.toString());
  await ensureDatabase(url.toString());
  const pool = createPool(url.toString(), { max });
  await migrate(pool);
  return { pool, drop: () => dropDatabase(url.toString()) };
}
