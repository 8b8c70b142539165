import type { Pool } from 'pg';
import { createPool } from '../../src/store/database';
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
