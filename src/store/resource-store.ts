/**
 * The one module every write goes through. Writes are batched (one round trip per statement,
 * not per resource), versioned (a new version only when content changed), and stamped so that
 * `snapshotTime()` can hand out a transactionTime at which every earlier write has committed.
 */
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { patientCompartmentsOf, REFERENCED_TYPES } from '../fhir/patient-compartment';
import { checkResource, type FhirResourceJson } from '../fhir/resource-validation';
import { sameContent } from './content-hash';
import { storedBody, type StoredBody } from './stored-body';
import { streamSnapshot, type StreamedRow } from './snapshot-stream';
import { groupCycleSql, groupPatientsSql } from './snapshot-scope';

export const DEFAULT_TENANT = 'default';

// Writers hold this advisory lock shared while they stamp and write; snapshotTime() takes it
// exclusively, so no write stamped at or before a transactionTime is still in flight.
const WRITE_STAMP_LOCK_KEY = '7311201466512002';

export type WriteOperation = { op: 'put'; resource: FhirResourceJson } | { op: 'delete'; resourceType: string; id: string };

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
      const client = await this.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock_shared($1)', [WRITE_STAMP_LOCK_KEY]);
        const { rows } = await client.query<{ stamp: Date }>(
          "SELECT date_trunc('milliseconds', clock_timestamp()) AS stamp",
        );
        const stamp = rows[0].stamp;
        const result = await work({ write: (operations) => applyWrites(client, this.tenant, stamp, operations) });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        // Two writers created the same new resource at once: the loser retries and sees the winner.
        if ((err as { code?: string }).code === '23505' && attempt < 3) continue;
        throw err;
      } finally {
        client.release();
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
   * A transactionTime for an export: every write stamped at or before it has committed, and
   * every later write is stamped after it (writers wait for the exclusive lock, and we hold it
   * until the clock has passed the returned millisecond).
   */
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

  async snapshotTime(): Promise<string> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [WRITE_STAMP_LOCK_KEY]);
      const { rows } = await client.query<{ t: Date }>("SELECT date_trunc('milliseconds', clock_timestamp()) AS t");
      await client.query('SELECT pg_sleep(0.002)');
      await client.query('COMMIT');
      return rows[0].t.toISOString();
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}

interface PreparedWrite {
  index: number;
  resourceType: string;
  id: string;
  resource?: FhirResourceJson;
  stored?: StoredBody;
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

async function applyWrites(
  client: PoolClient,
  tenant: string,
  stamp: Date,
  operations: WriteOperation[],
): Promise<WriteResult[]> {
  const prepared: PreparedWrite[] = operations.map((operation, index) => {
    if (operation.op === 'delete') return { index, resourceType: operation.resourceType, id: operation.id };
    const resource = checkResource(operation.resource);
    const id = resource.id ?? randomUUID();
    const withId = resource.id === id ? resource : { ...resource, id };
    return { index, resourceType: resource.resourceType, id, resource: withId, stored: storedBody({ ...withId, id }) };
  });
  const results: WriteResult[] = new Array(operations.length);
  for (const run of runsWithUniqueResources(prepared)) await applyRun(client, tenant, stamp, run, results);
  return results;
}

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
  const inserts: Array<{ write: PreparedWrite; versionId: number; body: string | null }> = [];
  for (const write of run) {
    const existing = current.get(`${write.resourceType}/${write.id}`);
    const live = existing && !existing.deleted ? existing : undefined;
    const base = { resourceType: write.resourceType, id: write.id };
    if (!write.resource) {
      if (!live) {
        results[write.index] = { ...base, outcome: 'not-found' };
        continue;
      }
      superseded.push(live.row_ref);
      inserts.push({ write, versionId: live.version_id + 1, body: null });
      results[write.index] = { ...base, outcome: 'deleted', versionId: String(live.version_id + 1), lastUpdated };
      continue;
    }
    if (live && (live.content_hash?.equals(write.stored!.hash) || (live.body !== null && sameContent(live.body, write.resource)))) {
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
    const body = write.stored!.render(String(versionId), lastUpdated);
    inserts.push({ write, versionId, body });
    results[write.index] = { ...base, outcome: live ? 'updated' : 'created', versionId: String(versionId), lastUpdated, body };
  }

  if (superseded.length > 0) {
    await client.query('UPDATE resource_versions SET superseded_at = $1 WHERE ctid = ANY($2::tid[])', [stamp, superseded]);
  }
  if (inserts.length === 0) return;
  await client.query(
    `INSERT INTO resource_versions (tenant, resource_type, id, version_id, last_updated, deleted, content_hash, body)
     SELECT $1, k.resource_type, k.id, k.version_id, $2, k.body IS NULL, k.content_hash, k.body
       FROM ROWS FROM (unnest($3::text[]), unnest($4::text[]), unnest($5::int[]), unnest($6::bytea[]),
                       unnest(string_to_array($7::text, E'\\x1e', '')))
         AS k(resource_type, id, version_id, content_hash, body)`,
    [
      tenant,
      stamp,
      inserts.map((i) => i.write.resourceType),
      inserts.map((i) => i.write.id),
      inserts.map((i) => i.versionId),
      inserts.map((i) => (i.body === null ? null : i.write.stored!.hash)),
      // Bodies travel as one text joined by RS (\x1e), which JSON text never contains raw: no
      // escaping on either side, unlike a text[] literal or a JSON array. Empty = deletion (NULL).
      inserts.map((i) => i.body ?? '').join('\x1e'),
    ],
  );
  await insertCompartments(client, tenant, inserts);
  await insertGroupMemberships(client, tenant, inserts);
  await insertProvenanceTargets(client, tenant, inserts);
}

const TARGET_REFERENCE = /([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

/** Provenance.target of each new Provenance version (see migration 5). */
async function insertProvenanceTargets(
  client: PoolClient,
  tenant: string,
  inserts: Array<{ write: PreparedWrite; versionId: number; body: string | null }>,
): Promise<void> {
  const rows: unknown[][] = [[], [], [], [], []];
  for (const { write, versionId, body } of inserts) {
    if (write.resourceType !== 'Provenance' || body === null || !write.resource) continue;
    const targets = Array.isArray(write.resource.target) ? (write.resource.target as Array<{ reference?: unknown }>) : [];
    const recorded = fhirDateTimeAsTimestamp(write.resource.recorded);
    const seen = new Set<string>();
    for (const target of targets) {
      const match = typeof target?.reference === 'string' ? TARGET_REFERENCE.exec(target.reference) : null;
      if (!match || seen.has(`${match[1]}/${match[2]}`)) continue;
      seen.add(`${match[1]}/${match[2]}`);
      [write.id, versionId, recorded, match[1], match[2]].forEach((value, i) => rows[i].push(value));
    }
  }
  if (rows[0].length === 0) return;
  await client.query(
    `INSERT INTO provenance_targets (tenant, provenance_id, version_id, recorded, target_type, target_id)
     SELECT $1, * FROM unnest($2::text[], $3::int[], $4::timestamptz[], $5::text[], $6::text[]) ON CONFLICT DO NOTHING`,
    [tenant, ...rows],
  );
}

/** A reference to a type Patient/Group exports add, in a stored (compact JSON) body. */
const REFERENCE_TO_ADDED_TYPE = new RegExp(`"reference":"(?:[^"]*/)?(${REFERENCED_TYPES.join('|')})/([A-Za-z0-9\\-.]{1,64})"`, 'g');

/**
 * The patient compartments of each new version, and for versions in some compartment the
 * Practitioners, Organizations, Locations and Medications they reference.
 */
async function insertCompartments(
  client: PoolClient,
  tenant: string,
  inserts: Array<{ write: PreparedWrite; versionId: number; body: string | null }>,
): Promise<void> {
  const patient: string[] = [];
  const type: string[] = [];
  const id: string[] = [];
  const version: number[] = [];
  const references: string[][] = [[], [], [], [], []];
  for (const { write, versionId, body } of inserts) {
    if (body === null || !write.resource) continue;
    const compartments = patientCompartmentsOf(write.resource as { resourceType: string; id: string });
    for (const patientId of compartments) {
      patient.push(patientId);
      type.push(write.resourceType);
      id.push(write.id);
      version.push(versionId);
    }
    if (compartments.length === 0) continue;
    const targets = new Set<string>();
    for (const match of body.matchAll(REFERENCE_TO_ADDED_TYPE)) {
      const key = `${match[1]}/${match[2]}`;
      if (targets.has(key)) continue;
      targets.add(key);
      [write.resourceType, write.id, String(versionId), match[1], match[2]].forEach((value, i) => references[i].push(value));
    }
  }
  if (patient.length === 0) return;
  await client.query(
    `INSERT INTO compartment_memberships (tenant, patient_id, resource_type, resource_id, version_id)
     SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::int[]) ON CONFLICT DO NOTHING`,
    [tenant, patient, type, id, version],
  );
  if (references[0].length === 0) return;
  await client.query(
    `INSERT INTO resource_references (tenant, source_type, source_id, source_version, target_type, target_id)
     SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::text[]) ON CONFLICT DO NOTHING`,
    [tenant, ...references],
  );
}

interface GroupMember {
  entity?: { reference?: unknown };
  period?: { start?: unknown; end?: unknown };
  inactive?: unknown;
}

/** A FHIR date or dateTime as a timestamptz literal (partial dates start at their first day). */
function fhirDateTimeAsTimestamp(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  if (/^\d{4}$/.test(value)) return `${value}-01-01T00:00:00Z`;
  if (/^\d{4}-\d{2}$/.test(value)) return `${value}-01T00:00:00Z`;
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return `${value}T00:00:00Z`;
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) && !Number.isNaN(Date.parse(value))) {
    return value;
  }
  return null;
}

const memberReference = /^(?:.*\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/;

async function insertGroupMemberships(
  client: PoolClient,
  tenant: string,
  inserts: Array<{ write: PreparedWrite; versionId: number; body: string | null }>,
): Promise<void> {
  const rows: unknown[][] = [[], [], [], [], [], [], []];
  for (const { write, versionId, body } of inserts) {
    if (write.resourceType !== 'Group' || body === null || !write.resource) continue;
    const members = Array.isArray(write.resource.member) ? (write.resource.member as GroupMember[]) : [];
    for (const member of members) {
      const match = typeof member.entity?.reference === 'string' ? memberReference.exec(member.entity.reference) : null;
      if (!match) continue;
      const values = [
        write.id,
        versionId,
        match[1],
        match[2],
        fhirDateTimeAsTimestamp(member.period?.start),
        fhirDateTimeAsTimestamp(member.period?.end),
        member.inactive === true,
      ];
      values.forEach((value, i) => rows[i].push(value));
    }
  }
  if (rows[0].length === 0) return;
  await client.query(
    `INSERT INTO group_memberships (tenant, group_id, version_id, member_type, member_id, period_start, period_end, inactive)
     SELECT $1, * FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::boolean[])`,
    [tenant, ...rows],
  );
}
