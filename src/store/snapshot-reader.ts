/**
 * Reads the resource versions current at an export's transactionTime, one type at a time, in
 * (last_updated, id) order with keyset pagination on the resource_versions_by_time index.
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

export interface SnapshotRow {
  id: string;
  /** PostgreSQL's text form of the timestamp: exact, and only ever used as a cursor. */
  lastUpdated: string;
  body: string;
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
  const counted = await pool.query<{ count: string }>(`SELECT count(*) FROM resource_versions WHERE ${SNAPSHOT}`, scopeParams(scope));
  const count = Number(counted.rows[0].count);
  if (count <= partitionSize) return { count, bounds: [] };
  const { rows } = await pool.query<{ last_updated: Date; id: string }>(
    `SELECT last_updated, id FROM (
       SELECT last_updated, id, row_number() OVER (ORDER BY last_updated, id) AS n
         FROM resource_versions WHERE ${SNAPSHOT}) numbered
      WHERE n % $6 = 0 AND n < $7
      ORDER BY last_updated, id`,
    [...scopeParams(scope), partitionSize, count],
  );
  return { count, bounds: rows.map((r) => ({ lastUpdated: r.last_updated.toISOString(), id: r.id })) };
}

/** Up to `limit` resources after `after` and at or before `upTo`, in (last_updated, id) order. */
export async function readSnapshotPage(
  pool: Pool,
  scope: SnapshotScope,
  range: { after?: Cursor; upTo?: Cursor },
  limit: number,
): Promise<SnapshotRow[]> {
  // Rows as arrays and the timestamp as text: no per-row objects or Date parsing on the hot path.
  // (Aliased: an output column named last_updated would make ORDER BY sort the text.)
  const { rows } = await pool.query<[string, string, string]>({
    rowMode: 'array',
    text: `SELECT id, last_updated::text AS cursor_time, body FROM resource_versions
      WHERE ${SNAPSHOT}
        AND ($6::timestamptz IS NULL OR (last_updated, id) > ($6::timestamptz, $7::text))
        AND ($8::timestamptz IS NULL OR (last_updated, id) <= ($8::timestamptz, $9::text))
      ORDER BY last_updated, id
      LIMIT $10`,
    values: [
      ...scopeParams(scope),
      range.after?.lastUpdated ?? null,
      range.after?.id ?? null,
      range.upTo?.lastUpdated ?? null,
      range.upTo?.id ?? null,
      limit,
    ],
  });
  return rows.map(([id, lastUpdated, body]) => ({ id, lastUpdated, body }));
}
