/**
 * The one place that writes BEGIN, COMMIT and ROLLBACK. `withTransaction` takes a client from
 * the pool, runs `work` in one transaction on it (committed when `work` returns, rolled back
 * when it throws) and releases the client either way; a client whose ROLLBACK failed (its
 * connection broke) is released as broken, so the pool does not hand it out again.
 * `inTransaction` does the same on a client the caller holds (a migration under its lock).
 */
import type { Pool, PoolClient } from 'pg';

export async function inTransaction<T>(client: PoolClient, work: (client: PoolClient) => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollback: unknown) => {
      (client as PoolClient & { brokenConnection?: unknown }).brokenConnection = rollback;
    });
    throw err;
  }
}

export async function withTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: unknown;
  try {
    return await inTransaction(client, work);
  } finally {
    broken = (client as PoolClient & { brokenConnection?: unknown }).brokenConnection;
    client.release(broken instanceof Error ? broken : undefined);
  }
}
