/**
 * The resource versions current at an export's transactionTime, one type at a time, in
 * (last_updated, id) order on the resource_versions_snapshot index: which types exist, and
 * where to cut a type into partitions. (snapshot-stream.ts reads the rows themselves.)
 */
import type { Pool } from 'pg';
import { snapshotFrom, snapshotKey, snapshotWhere, withSelectedPatients, type SnapshotScope } from './snapshot-scope';
import type { Cursor } from '../contracts/export-window';
import { literal } from './sql';

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
export async function planPartitions(pool: Pool, unresolved: SnapshotScope, partitionSize: number): Promise<{ count: number; bounds: Cursor[] }> {
  const scope = await withSelectedPatients(pool, unresolved);
  // One pass in index order: every partitionSize-th row is a bound, and the last row's number is the count.
  const key = snapshotKey(scope);
  // A recording holds exactly the versions to export: with nothing else to check, it is counted
  // alone (an index-only pass) instead of fetching every version it names.
  const recordingAlone = scope.recordedFor !== undefined && !scope.since && !scope.until && !scope.filterSql;
  const source = recordingAlone
    ? `export_references recorded WHERE recorded.export_id = ${literal(scope.recordedFor!)} AND recorded.resource_type = ${literal(scope.resourceType)}`
    : `${snapshotFrom(scope)} WHERE ${snapshotWhere(scope)}`;
  const { rows } = await pool.query<{ last_updated: Date; id: string; n: string; last: boolean }>(
    `SELECT last_updated, id, n, is_last AS last FROM (
       SELECT ${key.lastUpdated} AS last_updated, ${key.id} AS id,
              row_number() OVER w AS n,
              lead(${key.id}) OVER w IS NULL AS is_last
         FROM ${source}
       WINDOW w AS (ORDER BY ${key.lastUpdated}, ${key.id})) numbered
      WHERE n % $1 = 0 OR is_last
      ORDER BY last_updated, id`,
    [partitionSize],
  );
  if (rows.length === 0) return { count: 0, bounds: [] };
  const count = Number(rows[rows.length - 1].n);
  const bounds = rows.filter((r) => !r.last).map((r) => ({ lastUpdated: r.last_updated.toISOString(), id: r.id }));
  return { count, bounds };
}

/**
 * Widens partitions until `lists` (each a type's bounds: b bounds cut b + 1 partitions, counted
 * `weights[i]` times, as a view export runs a type's partitions once per view) cut at most `max`:
 * every list keeps every k-th bound, for the smallest k that fits. Ranges stay contiguous, so
 * every resource is still in exactly one partition.
 */
export function capPartitions<T>(lists: T[][], max: number, weights: number[] = lists.map(() => 1)): T[][] {
  const partitions = (ls: T[][]) => ls.reduce((n, b, i) => n + (b.length + 1) * weights[i]!, 0);
  if (partitions(lists) <= max) return lists;
  const floor = weights.reduce((n, w) => n + w, 0); // one partition per list
  if (max <= floor) return lists.map(() => []);
  const weightedBounds = lists.reduce((n, b, i) => n + b.length * weights[i]!, 0);
  for (let k = Math.max(2, Math.floor(weightedBounds / (max - floor))); ; k++) {
    const thinned = lists.map((b) => b.filter((_, i) => (i + 1) % k === 0));
    if (partitions(thinned) <= max) return thinned;
  }
}
