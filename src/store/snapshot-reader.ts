/**
 * The resource versions current at an export's transactionTime, one type at a time, in
 * (last_updated, id) order on the resource_versions_snapshot index: which types exist, and
 * where to cut a type into partitions. (snapshot-stream.ts reads the rows themselves.)
 */
import type { Pool } from 'pg';

/** A position in (last_updated, id) order; pages start after it. */
export interface Cursor {
  lastUpdated: string;
  id: string;
}

export interface SnapshotScope {
  tenant: string;
  resourceType: string;
  transactionTime: string;
  /** Only versions changed after this instant (`_since`). */
  since?: string;
  /** Only versions changed at or before this instant (`_until`). */
  until?: string;
}

/** The WHERE clause shared by counting, planning and paging; parameters $1..$5. */
const SNAPSHOT = `tenant = $1 AND resource_type = $2
  AND last_updated <= $3 AND (superseded_at IS NULL OR superseded_at > $3) AND NOT deleted
  AND ($4::timestamptz IS NULL OR last_updated > $4)
  AND ($5::timestamptz IS NULL OR last_updated <= $5)`;

const scopeParams = (s: SnapshotScope) => [s.tenant, s.resourceType, s.transactionTime, s.since ?? null, s.until ?? null];

/** Types with at least one stored version, by a loose index scan (one index probe per type). */
export async function storedResourceTypes(pool: Pool, tenant: string): Promise<string[]> {
  const { rows } = await pool.query<{ resource_type: string }>(
    `WITH RECURSIVE t(resource_type) AS (
       (SELECT resource_type FROM resource_versions WHERE tenant = $1 ORDER BY resource_type LIMIT 1)
       UNION ALL
       SELECT (SELECT v.resource_type FROM resource_versions v
                WHERE v.tenant = $1 AND v.resource_type > t.resource_type ORDER BY v.resource_type LIMIT 1)
         FROM t WHERE t.resource_type IS NOT NULL)
     SELECT resource_type FROM t WHERE resource_type IS NOT NULL`,
    [tenant],
  );
  return rows.map((r) => r.resource_type);
}

/**
 * How many resources the scope holds and the cursors that cut it into partitions of about
 * `partitionSize` (partition i covers (bounds[i-1], bounds[i]]; the last one is open-ended).
 */
export async function planPartitions(pool: Pool, scope: SnapshotScope, partitionSize: number): Promise<{ count: number; bounds: Cursor[] }> {
  // One pass in index order: every partitionSize-th row is a bound, and the last row's number is the count.
  const { rows } = await pool.query<{ last_updated: Date; id: string; n: string; last: boolean }>(
    `SELECT last_updated, id, n, is_last AS last FROM (
       SELECT last_updated, id,
              row_number() OVER w AS n,
              lead(id) OVER w IS NULL AS is_last
         FROM resource_versions WHERE ${SNAPSHOT}
       WINDOW w AS (ORDER BY last_updated, id)) numbered
      WHERE n % $6 = 0 OR is_last
      ORDER BY last_updated, id`,
    [...scopeParams(scope), partitionSize],
  );
  if (rows.length === 0) return { count: 0, bounds: [] };
  const count = Number(rows[rows.length - 1].n);
  const bounds = rows.filter((r) => !r.last).map((r) => ({ lastUpdated: r.last_updated.toISOString(), id: r.id }));
  return { count, bounds };
}
