import type { Pool } from 'pg';
import { migrations as allMigrations, type Migration } from './migrations';
import { inTransaction } from './transaction';

// Any fixed 64-bit key; taken while migrating so two processes starting at once take turns.
const MIGRATION_LOCK_KEY = 7_311_201_466_512_001n;

/** Applies pending migrations, each in its own transaction; returns the versions applied. */
export async function migrate(pool: Pool, migrations: Migration[] = allMigrations): Promise<number[]> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
      const applied = new Set(rows.map((r) => r.version));
      const done: number[] = [];
      for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
        if (applied.has(migration.version)) continue;
        try {
          await inTransaction(client, async () => {
            await client.query(migration.sql);
            await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
          });
        } catch (err) {
          throw new Error(`migration ${migration.version} (${migration.name}) failed: ${(err as Error).message}`);
        }
        done.push(migration.version);
      }
      return done;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]);
    }
  } finally {
    client.release();
  }
}
