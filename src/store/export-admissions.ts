/**
 * The record of recent export admissions per tenant (migration `export_admissions`), which the
 * per-tenant cap reads while Temporal's visibility lags. Its calls run inside the admission's
 * transaction: the lock is held until it ends.
 */
import type { PoolClient } from 'pg';

/** Kick-offs of one tenant take turns, across API processes, until this transaction ends. */
export async function lockTenantAdmissions(db: PoolClient, tenant: string): Promise<void> {
  await db.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`bulkflow export admission ${tenant}`]);
}

/** Exports admitted in the last minute plus `extraSeconds` (visibility's lag, and the age of a reused count). */
export async function recentAdmissions(db: PoolClient, tenant: string, extraSeconds: number): Promise<string[]> {
  const { rows } = await db.query<{ export_id: string }>(
    "SELECT export_id FROM export_admissions WHERE tenant = $1 AND admitted_at > now() - interval '1 minute' - make_interval(secs => $2)",
    [tenant, extraSeconds],
  );
  return rows.map((r) => r.export_id);
}

/** Records an admitted export, and forgets admissions older than visibility could lag. */
export async function recordAdmission(db: PoolClient, tenant: string, exportId: string): Promise<void> {
  await db.query('INSERT INTO export_admissions (tenant, export_id) VALUES ($1, $2)', [tenant, exportId]);
  await db.query("DELETE FROM export_admissions WHERE tenant = $1 AND admitted_at < now() - interval '5 minutes'", [tenant]);
}
