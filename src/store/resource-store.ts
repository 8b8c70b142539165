/**
 * The one module every write goes through. Writes are batched (one round trip per statement,
 * not per resource), versioned (a new version only when content changed), and stamped so that
 * `snapshotTime()` can hand out a transactionTime at which every earlier write has committed.
 */
import type { Pool, PoolClient } from 'pg';
import { checkResource, type FhirResourceJson } from '../fhir/resource-validation';
import { sameContent } from './same-content';
import { prepareResource, renderBody, type PreparedResource } from './prepared-resource';
import { withTransaction } from './transaction';
import { streamSnapshot, type StreamedRow } from './snapshot-stream';
import { groupCycleSql, groupPatientsSql } from './snapshot-scope';

export const DEFAULT_TENANT = 'default';

// Writers hold this advisory lock shared while they stamp and write; snapshotTime() takes it
// exclusively, so no write stamped at or before a transactionTime is still in flight.
const WRITE_STAMP_LOCK_KEY = '7311201466512002';

export type WriteOperation =
  | { op: 'put'; resource: FhirResourceJson }
  /** A put whose resource was prepared already (e.g. on an import's parsing thread). */
  | { op: 'put-prepared'; prepared: PreparedResource }
  | { op: 'delete'; resourceType: string; id: string };

export type WriteOutcome = 'created' | 'updated' | 'unchanged' | 'deleted' | 'not-found';

export interface WriteResult {
  resourceType: string;
  id: string;
  outcome: WriteOutcome;
  /** The current version after the write (absent when a delete found nothing to delete). */
  versionId?: string;
  lastUpdated?: string;
  /** The stored resource with its meta, for created/updated/unchanged. */
  body?: string;
}

export interface StoredResource {
  resourceType: string;
  id: string;
  versionId: string;
  lastUpdated: string;
  deleted: boolean;
  body: string | null;
}

interface CurrentVersion {
  version_id: number;
  content_hash: Buffer | null;
  deleted: boolean;
  body: string | null;
  last_updated: Date;
}

/** Operations of one transaction, applied with one stamp. */
export interface StoreTransaction {
  write(operations: WriteOperation[]): Promise<WriteResult[]>;
}

export class ResourceStore {
  constructor(
    readonly pool: Pool,
    readonly tenant: string = DEFAULT_TENANT,
  ) {}

  /** Applies `operations` atomically and returns one result per operation, in order. */
  async write(operations: WriteOperation[]): Promise<WriteResult[]> {
    return this.transaction((tx) => tx.write(operations));
  }

  async put(resource: unknown): Promise<WriteResult> {
    return (await this.write([{ op: 'put', resource: checkResource(resource) }]))[0];
  }

  async delete(resourceType: string, id: string): Promise<WriteResult> {
    return (await this.write([{ op: 'delete', resourceType, id }]))[0];
  }

  /** Runs `work` in one database transaction: all its writes commit together or not at all. */
  async transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await withTransaction(this.pool, async (client) => {
          await client.query('SELECT pg_advisory_xact_lock_shared($1)', [WRITE_STAMP_LOCK_KEY]);
          const { rows } = await client.query<{ stamp: Date }>("SELECT date_trunc('milliseconds', clock_timestamp()) AS stamp");
          const stamp = rows[0].stamp;
          return work({ write: (operations) => applyWrites(client, this.tenant, stamp, operations) });
        });
      } catch (err) {
        // Two writers created the same new resource at once: the loser retries and sees the winner.
        if ((err as { code?: string }).code === '23505' && attempt < 3) continue;
        throw err;
      }
    }
  }

  /** The current version of a resource, including a deletion tombstone. */
  async read(resourceType: string, id: string): Promise<StoredResource | undefined> {
    const { rows } = await this.pool.query<Pick<CurrentVersion, 'version_id' | 'deleted' | 'body' | 'last_updated'>>(
      `SELECT version_id, deleted, body, last_updated FROM resource_versions
        WHERE tenant = $1 AND resource_type = $2 AND id = $3 AND superseded_at IS NULL`,
      [this.tenant, resourceType, id],
    );
    if (rows.length === 0) return undefined;
    const row = rows[0];
    return {
      resourceType,
      id,
      versionId: String(row.version_id),
      lastUpdated: row.last_updated.toISOString(),
      deleted: row.deleted,
      body: row.body,
    };
  }

  /** The types of the current (not deleted) resources with each of these ids. */
  async currentTypesOfIds(ids: string[]): Promise<Map<string, string[]>> {
    const found = new Map<string, string[]>();
    if (ids.length === 0) return found;
    const { rows } = await this.pool.query<{ id: string; resource_type: string }>(
      `SELECT id, resource_type FROM resource_versions
        WHERE tenant = $1 AND id = ANY($2::text[]) AND superseded_at IS NULL AND NOT deleted`,
      [this.tenant, ids],
    );
    for (const row of rows) found.set(row.id, [...(found.get(row.id) ?? []), row.resource_type]);
    return found;
  }

  /** Which of `ids` are current (not deleted) resources of `resourceType`. */
  async existingIds(resourceType: string, ids: string[]): Promise<Set<string>> {
    const { rows } = await this.pool.query<{ id: string }>(
      `SELECT id FROM resource_versions
        WHERE tenant = $1 AND resource_type = $2 AND id = ANY($3::text[]) AND superseded_at IS NULL AND NOT deleted`,
      [this.tenant, resourceType, ids],
    );
    return new Set(rows.map((r) => r.id));
  }

  /** Which of `patientIds` are active Patient members of the Group now. */
  async groupPatientsAmong(groupId: string, patientIds: string[]): Promise<Set<string>> {
    const { rows } = await this.pool.query<{ member_id: string }>(
      `SELECT member_id FROM (${groupPatientsSql(this.tenant, groupId, new Date().toISOString())}) members WHERE member_id = ANY($1::text[])`,
      [patientIds],
    );
    return new Set(rows.map((r) => r.member_id));
  }

  /** Group ids from `groupId` back into a Group already passed (A → B → A), if its nesting has a cycle now. */
  async groupCycle(groupId: string): Promise<string[] | undefined> {
    const { rows } = await this.pool.query<{ path: string[] }>(groupCycleSql(this.tenant, groupId, new Date().toISOString()));
    return rows[0]?.path;
  }

  /**
   * The resources of one type current at `at`, in (last_updated, id) order, optionally narrowed
   * by an SQL condition on resource_versions; streamed in batches of undecoded bodies.
   */
  currentResources(resourceType: string, at: string, filterSql?: string): AsyncGenerator<StreamedRow[]> {
    return streamSnapshot(this.pool, { tenant: this.tenant, resourceType, transactionTime: at, filterSql }, {});
  }

  /** The same store seen by another tenant (same pool). */
  forTenant(tenant: string): ResourceStore {
    return tenant === this.tenant ? this : new ResourceStore(this.pool, tenant);
  }

  /**
   * A transactionTime for an export: every write stamped at or before it has committed, and
   * every later write is stamped after it (writers wait for the exclusive lock, and we hold it
   * until the clock has passed the returned millisecond).
   */
  async snapshotTime(): Promise<string> {
    return withTransaction(this.pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [WRITE_STAMP_LOCK_KEY]);
      const { rows } = await client.query<{ t: Date }>("SELECT date_trunc('milliseconds', clock_timestamp()) AS t");
      await client.query('SELECT pg_sleep(0.002)');
      return rows[0].t.toISOString();
    });
  }
}

interface PreparedWrite {
  index: number;
  resourceType: string;
  id: string;
  /** Absent for a deletion. */
  prepared?: PreparedResource;
}

/** Splits operations into runs where each resource appears once, so a batch never races itself. */
function runsWithUniqueResources(prepared: PreparedWrite[]): PreparedWrite[][] {
  const runs: PreparedWrite[][] = [];
  let run: PreparedWrite[] = [];
  let seen = new Set<string>();
  for (const write of prepared) {
    const key = `${write.resourceType}/${write.id}`;
    if (seen.has(key)) {
      runs.push(run);
      run = [];
      seen = new Set();
    }
    seen.add(key);
    run.push(write);
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

function prepareOperation(operation: WriteOperation, index: number): PreparedWrite {
  if (operation.op === 'delete') return { index, resourceType: operation.resourceType, id: operation.id };
  if (operation.op === 'put-prepared') return { index, resourceType: operation.prepared.resourceType, id: operation.prepared.id, prepared: operation.prepared };
  const prepared = prepareResource(checkResource(operation.resource));
  return { index, resourceType: prepared.resourceType, id: prepared.id, prepared };
}

async function applyWrites(
  client: PoolClient,
  tenant: string,
  stamp: Date,
  operations: WriteOperation[],
): Promise<WriteResult[]> {
  const prepared = operations.map(prepareOperation);
  const results: WriteResult[] = new Array(operations.length);
  for (const run of runsWithUniqueResources(prepared)) await applyRun(client, tenant, stamp, run, results);
  return results;
}

/** A fingerprint that crossed threads arrives as a Uint8Array; pg and comparisons want a Buffer. */
const asBuffer = (bytes: Uint8Array) => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

type Insert = { write: PreparedWrite; versionId: number; body: string | null };

async function applyRun(
  client: PoolClient,
  tenant: string,
  stamp: Date,
  run: PreparedWrite[],
  results: WriteResult[],
): Promise<void> {
  const lastUpdated = stamp.toISOString();
  // A parameterised index lookup per key (LATERAL), whatever the planner's statistics say.
  const { rows } = await client.query<CurrentVersion & { resource_type: string; id: string; row_ref: string }>(
    `SELECT v.resource_type, v.id, v.version_id, v.content_hash, v.deleted, v.body, v.last_updated, v.row_ref
       FROM unnest($2::text[], $3::text[]) AS k(resource_type, id)
       CROSS JOIN LATERAL (
         SELECT r.*, r.ctid::text AS row_ref FROM resource_versions r
          WHERE r.tenant = $1 AND r.resource_type = k.resource_type AND r.id = k.id AND r.superseded_at IS NULL
            FOR UPDATE) v`,
    [tenant, run.map((w) => w.resourceType), run.map((w) => w.id)],
  );
  const current = new Map(rows.map((r) => [`${r.resource_type}/${r.id}`, r]));

  const superseded: string[] = []; // row_ref of the versions this run replaces (locked above)
  const inserts: Insert[] = [];
  for (const write of run) {
    const existing = current.get(`${write.resourceType}/${write.id}`);
    const live = existing && !existing.deleted ? existing : undefined;
    const base = { resourceType: write.resourceType, id: write.id };
    const prepared = write.prepared;
    if (!prepared) {
      if (!live) {
        results[write.index] = { ...base, outcome: 'not-found' };
        continue;
      }
      superseded.push(live.row_ref);
      inserts.push({ write, versionId: live.version_id + 1, body: null });
      results[write.index] = { ...base, outcome: 'deleted', versionId: String(live.version_id + 1), lastUpdated };
      continue;
    }
    if (live && (live.content_hash?.equals(asBuffer(prepared.hash)) || (live.body !== null && sameContent(live.body, renderBody(prepared, '0', lastUpdated))))) {
      results[write.index] = {
        ...base,
        outcome: 'unchanged',
        versionId: String(live.version_id),
        lastUpdated: live.last_updated.toISOString(),
        body: live.body ?? undefined,
      };
      continue;
    }
    const versionId = (existing?.version_id ?? 0) + 1;
    if (existing) superseded.push(existing.row_ref);
    const body = renderBody(prepared, String(versionId), lastUpdated);
    inserts.push({ write, versionId, body });
    results[write.index] = { ...base, outcome: live ? 'updated' : 'created', versionId: String(versionId), lastUpdated, body };
  }

  if (superseded.length > 0) {
    await client.query('UPDATE resource_versions SET superseded_at = $1 WHERE ctid = ANY($2::tid[])', [stamp, superseded]);
  }
  if (inserts.length === 0) return;
  await client.query(
    `INSERT INTO resource_versions (tenant, resource_type, id, version_id, last_updated, deleted, content_hash, body, compartment_patients)
     SELECT $1, k.resource_type, k.id, k.version_id, $2, k.body IS NULL, k.content_hash, k.body, string_to_array(NULLIF(k.patients, ''), ',')
       FROM ROWS FROM (unnest($3::text[]), unnest($4::text[]), unnest($5::int[]), unnest($6::bytea[]),
                       unnest(string_to_array($7::text, E'\\x1e', '')), unnest($8::text[]))
         AS k(resource_type, id, version_id, content_hash, body, patients)`,
    [
      tenant,
      stamp,
      inserts.map((i) => i.write.resourceType),
      inserts.map((i) => i.write.id),
      inserts.map((i) => i.versionId),
      inserts.map((i) => (i.body === null ? null : asBuffer(i.write.prepared!.hash))),
      // Bodies travel as one text joined by RS (\x1e), which JSON text never contains raw: no
      // escaping on either side, unlike a text[] literal or a JSON array. Empty = deletion (NULL).
      inserts.map((i) => i.body ?? '').join('\x1e'),
      // The compartment's patients, comma-joined (FHIR ids hold no commas); '' = none (NULL).
      inserts.map((i) => (i.body === null ? '' : [...new Set(i.write.prepared!.compartments)].sort().join(','))),
    ],
  );
  await insertIndexRows(client, tenant, inserts.filter((i) => i.body !== null));
}

/** The index rows of the new (not deleted) versions: compartments, referenced types, Group members, Provenance targets. */
async function insertIndexRows(client: PoolClient, tenant: string, inserts: Insert[]): Promise<void> {
  const compartments: unknown[][] = [[], [], [], []];
  const references: unknown[][] = [[], [], [], [], []];
  const members: unknown[][] = [[], [], [], [], [], [], []];
  const targets: unknown[][] = [[], [], [], [], []];
  for (const { write, versionId } of inserts) {
    const p = write.prepared!;
    for (const patientId of p.compartments) [patientId, p.resourceType, p.id, versionId].forEach((v, i) => compartments[i].push(v));
    for (const reference of p.references) {
      const [type, id] = reference.split('/');
      [p.resourceType, p.id, versionId, type, id].forEach((v, i) => references[i].push(v));
    }
    for (const m of p.members ?? []) [p.id, versionId, m.memberType, m.memberId, m.periodStart, m.periodEnd, m.inactive].forEach((v, i) => members[i].push(v));
    for (const target of p.provenance?.targets ?? []) {
      const [type, id] = target.split('/');
      [p.id, versionId, p.provenance!.recorded, type, id].forEach((v, i) => targets[i].push(v));
    }
  }
  // Each statement runs only when it has rows.
  const insert = async (rows: unknown[][], sql: string) => {
    if (rows[0].length > 0) await client.query(sql, [tenant, ...rows]);
  };
  await insert(
    compartments,
    `INSERT INTO compartment_memberships (tenant, patient_id, resource_type, resource_id, version_id)
     SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::int[]) ON CONFLICT DO NOTHING`,
  );
  await insert(
    references,
    `INSERT INTO resource_references (tenant, source_type, source_id, source_version, target_type, target_id)
     SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::text[]) ON CONFLICT DO NOTHING`,
  );
  await insert(
    members,
    `INSERT INTO group_memberships (tenant, group_id, version_id, member_type, member_id, period_start, period_end, inactive)
     SELECT $1, * FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::boolean[])`,
  );
  await insert(
    targets,
    `INSERT INTO provenance_targets (tenant, provenance_id, version_id, recorded, target_type, target_id)
     SELECT $1, * FROM unnest($2::text[], $3::int[], $4::timestamptz[], $5::text[], $6::text[]) ON CONFLICT DO NOTHING`,
  );
}
