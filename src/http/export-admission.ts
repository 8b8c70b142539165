/**
 * The per-tenant cap on running exports, enforced across API processes. Kick-offs of one tenant
 * take turns under a PostgreSQL advisory lock; each counts the exports Temporal's visibility
 * lists as running, plus those admitted in the last minute that it does not list yet (checked
 * one by one, and only near the cap: still running, or already done), starts its workflow only
 * below the cap, and records it before the lock is released. Visibility alone lags: 200 concurrent kick-offs under
 * a cap of 10 started 107.
 */
import type { Pool } from 'pg';
import { exportStateKey, exportTenantKey } from '../temporal/search-attribute-registry';
import type { TemporalGateway } from '../temporal/gateway';
import { OperationOutcomeError } from '../fhir/outcome-error';
import { lockTenantAdmissions, recentAdmissions, recordAdmission } from '../store/export-admissions';
import { withTransaction } from '../store/transaction';

export interface AdmissionDeps {
  temporal: TemporalGateway;
  pool?: Pool;
  maxRunningExports?: number;
  retryAfterSeconds: number;
}

/**
 * A tenant's visibility count, reused for this long by the next kick-offs of this process. The
 * upper bound stays one: an export running now was listed then, or admitted less than a minute
 * before then (visibility's lag), or admitted since; so the admissions counted with a reused
 * count reach back a minute before it was taken. Near the cap the exact check runs as before.
 */
const COUNT_REUSE_MS = 1000;
const counts = new Map<string, { running: number; at: number }>();

async function listedRunning(deps: AdmissionDeps, tenant: string, query: string): Promise<{ running: number; ageMs: number }> {
  const cached = counts.get(tenant);
  const now = Date.now();
  if (cached && now - cached.at < COUNT_REUSE_MS) return { running: cached.running, ageMs: now - cached.at };
  const running = await deps.temporal.countWorkflows(query);
  counts.set(tenant, { running, at: now });
  if (counts.size > 10_000) counts.delete(counts.keys().next().value!);
  return { running, ageMs: 0 };
}

/** Starts the export with `start` if the tenant is below its cap; else 429. */
export async function admitExport(deps: AdmissionDeps, tenant: string, exportId: string, start: () => Promise<unknown>): Promise<void> {
  const cap = deps.maxRunningExports;
  if (!cap) {
    await start();
    return;
  }
  const query = `WorkflowType IN ('bulkExport', 'viewExport') AND ExecutionStatus = 'Running' AND ${exportTenantKey.name} = '${tenant}' AND ${exportStateKey.name} = 'running'`;
  if (!deps.pool) {
    await refuseAtCap(deps, tenant, await deps.temporal.countWorkflows(query), cap);
    await start();
    return;
  }
  await withTransaction(deps.pool, async (db) => {
    await lockTenantAdmissions(db, tenant);
    const listed = await listedRunning(deps, tenant, query);
    const recent = await recentAdmissions(db, tenant, (listed.ageMs + 1000) / 1000); // a second more: the count's age is measured on this process's clock
    // Cheap first: listed plus recently admitted is an upper bound (some are both, or done).
    if (listed.running + recent.length >= cap) {
      const listedNow = new Set(await deps.temporal.listWorkflowIds(query, cap));
      let running = listedNow.size;
      for (const id of recent) if (running < cap && !listedNow.has(id) && (await deps.temporal.isRunningExport(id))) running++;
      await refuseAtCap(deps, tenant, running, cap);
    }
    await start();
    await recordAdmission(db, tenant, exportId);
  });
}

async function refuseAtCap(deps: AdmissionDeps, tenant: string, running: number, cap: number): Promise<void> {
  if (running < cap) return;
  throw OperationOutcomeError.throttled(`Tenant ${tenant} has ${running} exports running, the most allowed at once; retry when one has finished`, Math.max(deps.retryAfterSeconds, 10));
}
