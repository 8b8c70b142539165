/**
 * What an export reads, as SQL: the resource versions of one type current at transactionTime,
 * within _since/_until, and for Patient/Group exports only those in the compartments of the
 * selected patients. Built with quoted literals because COPY takes no parameters; every value
 * is an id checked against the FHIR id pattern or an instant produced by bulkflow.
 */

import type { CompartmentFilter, Cursor, ExportWindow } from '../contracts/export-window';
import { instant, literal } from './sql';

/** One type's versions in an export's window. */
export interface SnapshotScope extends ExportWindow {
  resourceType: string;
  /**
   * The patients `compartment` selects, resolved at transactionTime (withSelectedPatients):
   * the versions' own patient lists are checked against them. Unset with a compartment: every patient.
   */
  selectedPatients?: string[];
  /**
   * Only the versions of this type that export `recordedFor` recorded when it was planned
   * (referenced resources, associated Provenance; exports planned before migration 10 also
   * recorded a Group's or patient list's compartments): see recorded-selection.ts. They are
   * read from the recording, in its order, by key.
   */
  recordedFor?: string;
  /** An extra SQL condition on resource_versions (the pushable part of `_typeFilter`). */
  filterSql?: string;
  /** Read the deletions instead: tombstones current at transactionTime (`_since` exports report them). */
  deletions?: boolean;
}

/** Conditions for a group_memberships row (alias `m`) that counts at `at`: active, in period, of the Group version current then. */
function activeMembership(m: string, tenant: string, at: string): string {
  const t = instant(at);
  return `${m}.tenant = ${literal(tenant)} AND NOT ${m}.inactive
      AND (${m}.period_start IS NULL OR ${m}.period_start <= ${t}) AND (${m}.period_end IS NULL OR ${m}.period_end > ${t})
      AND EXISTS (SELECT 1 FROM resource_versions g
                   WHERE g.tenant = ${m}.tenant AND g.resource_type = 'Group' AND g.id = ${m}.group_id AND g.version_id = ${m}.version_id
                     AND g.last_updated <= ${t} AND (g.superseded_at IS NULL OR g.superseded_at > ${t}) AND NOT g.deleted OFFSET 0)`;
}

/** The Groups reachable from `groupId` through active Group members at `at` (itself included), with the path to each. */
function nestedGroupsSql(tenant: string, groupId: string, at: string): string {
  return `WITH RECURSIVE nested(id, path, cycle) AS (
      SELECT ${literal(groupId)}::text COLLATE "C", ARRAY[${literal(groupId)}::text COLLATE "C"], false
      UNION ALL
      SELECT m.member_id, nested.path || m.member_id, m.member_id = ANY(nested.path)
        FROM nested CROSS JOIN LATERAL (${membersOf('nested.id', 'Group', tenant, at)}) m
       WHERE NOT nested.cycle)`;
}

/** The active members of type `memberType` of the Group `groupIdSql` (an SQL expression), by index (see versionByKey). */
function membersOf(groupIdSql: string, memberType: string, tenant: string, at: string): string {
  return `SELECT m.member_id FROM group_memberships m
       WHERE m.tenant = ${literal(tenant)} AND m.group_id = ${groupIdSql} AND m.member_type = ${literal(memberType)} AND ${activeMembership('m', tenant, at)} OFFSET 0`;
}

/** The patients of a Group at `at`, nested Groups included (a cycle is followed once, never forever). */
export function groupPatientsSql(tenant: string, groupId: string, at: string): string {
  return `${nestedGroupsSql(tenant, groupId, at)}
    SELECT m.member_id FROM (SELECT DISTINCT id FROM nested WHERE NOT cycle) g
     CROSS JOIN LATERAL (${membersOf('g.id', 'Patient', tenant, at)}) m`;
}

/**
 * Group exports with `_since`: a patient who joined after `_since` gets all of their data, the
 * others only changes. `inJoined` says, given an array of the joined patients' ids, that the
 * row is theirs. The array is computed once per query (an uncorrelated ARRAY(...) is an
 * InitPlan), never once per row.
 */
export function changedOrJoinedSql(tenant: string, groupId: string, transactionTime: string, since: string, lastUpdated: string, inJoined: (joinedIds: string) => string): string {
  const joined = `ARRAY((${groupPatientsSql(tenant, groupId, transactionTime)})
       EXCEPT (${groupPatientsSql(tenant, groupId, since)}))`;
  return `(${lastUpdated} > ${instant(since)} OR ${inJoined(joined)})`;
}

/** A path of Group ids that leads from `groupId` back to a Group already on it, if there is one. */
export function groupCycleSql(tenant: string, groupId: string, at: string): string {
  return `${nestedGroupsSql(tenant, groupId, at)}
    SELECT path FROM nested WHERE cycle LIMIT 1`;
}

/** Conditions on a compartment_memberships row (alias `c`) for the patients a compartment filter selects. */
export function selectedPatients(tenant: string, compartment: CompartmentFilter, at: string): string[] {
  const conditions: string[] = [];
  if (compartment.groupId) conditions.push(`c.patient_id IN (${groupPatientsSql(tenant, compartment.groupId, at)})`);
  if (compartment.patientIds) conditions.push(`c.patient_id IN (${compartment.patientIds.map(literal).join(', ') || 'NULL'})`);
  if (compartment.patientList) conditions.push(`c.patient_id IN (${keptPatientsSql(tenant, compartment.patientList.id)})`);
  return conditions;
}

/*
 * Plans that do not hinge on row estimates. On a store just written (nothing analyzed: a user
 * imports and exports at once, and a recording is always fresh) the planner expects one row
 * everywhere, and joined a recording to a type's versions as a nested loop that rescanned every
 * version of the type per recorded row: quadratic (145 s for a 38k-resource Group instead of
 * 3 s). So each step from a row to the rows it names is a probe by index inside
 * `CROSS JOIN LATERAL (... OFFSET 0)`: the OFFSET keeps the planner from flattening it into a
 * join it would then order by its guesses, so every plan is linear whatever the statistics say.
 * That suits reads of a range (a partition). Patient and Group reads need no join at all: each
 * version's own patient list is checked against the resolved selection (inSelectedCompartments).
 * Plain joins over a whole selection (recording associated Provenance, recorded-selection.ts)
 * run without nested loops instead: hash and merge joins are linear too.
 */

/** The version a row names (`alias`), fetched by primary key. Arguments are SQL expressions. */
export function versionByKey(alias: string, key: { tenant: string; type: string; id: string; version: string }): string {
  return `CROSS JOIN LATERAL (SELECT * FROM resource_versions k
       WHERE k.tenant = ${key.tenant} AND k.resource_type = ${key.type} AND k.id = ${key.id} AND k.version_id = ${key.version} OFFSET 0) ${alias}`;
}

/** The patients of a list kept for an export (patient-lists.ts). */
function keptPatientsSql(tenant: string, listId: string): string {
  return `SELECT patient_id FROM export_patient_lists WHERE tenant = ${literal(tenant)} AND list_id = ${literal(listId)}`;
}

/** The selected patients' ids as a relation with column `patient_id`; undefined selects every patient. */
function selectedPatientIds(tenant: string, compartment: CompartmentFilter, at: string): string | undefined {
  const sets: string[] = [];
  if (compartment.groupId) sets.push(`SELECT member_id FROM (${groupPatientsSql(tenant, compartment.groupId, at)}) g`);
  if (compartment.patientIds) sets.push(`SELECT unnest(ARRAY[${compartment.patientIds.map(literal).join(', ') || 'NULL'}]::text[]) COLLATE "C"`);
  if (compartment.patientList) sets.push(keptPatientsSql(tenant, compartment.patientList.id));
  if (sets.length === 0) return undefined;
  // DISTINCT: a patient in two nested Groups is selected once.
  return `SELECT DISTINCT patient_id FROM (${sets.map((set) => `(${set})`).join(' INTERSECT ')}) p(patient_id)`;
}

/**
 * FROM: the compartment_memberships rows (alias `c`) of the selected patients that satisfy
 * `condition`, reached patient by patient (an index range of the primary key each).
 */
export function selectedCompartmentRows(tenant: string, compartment: CompartmentFilter, at: string, condition: string): string {
  const patients = selectedPatientIds(tenant, compartment, at);
  if (!patients) return `compartment_memberships c`;
  return `(${patients}) selected
     CROSS JOIN LATERAL (SELECT * FROM compartment_memberships c
       WHERE c.tenant = ${literal(tenant)} AND c.patient_id = selected.patient_id AND ${condition} OFFSET 0) c`;
}

/**
 * What a scope reads from: resource_versions, or for a recorded selection the recording
 * (alias `recorded`) with the exact version each row names, by key.
 */
export function snapshotFrom(scope: SnapshotScope): string {
  if (!scope.recordedFor) return 'resource_versions';
  return `export_references recorded
     ${versionByKey('resource_versions', { tenant: literal(scope.tenant), type: 'recorded.resource_type', id: 'recorded.id', version: 'recorded.at_version' })}`;
}

/** The (last_updated, id) order of a scope, as the columns its index keeps in that order. */
export function snapshotKey(scope: SnapshotScope): { lastUpdated: string; id: string } {
  return scope.recordedFor ? { lastUpdated: 'recorded.at_last_updated', id: 'recorded.id' } : { lastUpdated: 'resource_versions.last_updated', id: 'resource_versions.id' };
}

/**
 * The predicate of the resource_versions_snapshot index (migration 13): a range read states it
 * to use the index, and a probe by key, which does not, keeps to the primary key.
 */
export const SNAPSHOT_INDEX_PREDICATE = "resource_versions.last_updated > '-infinity'::timestamptz";

/** The WHERE clause (FROM snapshotFrom(scope)) of a scope and an optional (after, upTo] range. */
export function snapshotWhere(scope: SnapshotScope, range: { after?: Cursor; upTo?: Cursor } = {}): string {
  const t = instant(scope.transactionTime);
  const key = snapshotKey(scope);
  const conditions = [
    ...(scope.recordedFor ? [`recorded.export_id = ${literal(scope.recordedFor)}`, `recorded.resource_type = ${literal(scope.resourceType)}`] : []),
    `resource_versions.tenant = ${literal(scope.tenant)}`,
    `resource_versions.resource_type = ${literal(scope.resourceType)}`,
    // A recording names its versions: they are probed by key, not read as a range.
    ...(scope.recordedFor ? [] : [SNAPSHOT_INDEX_PREDICATE]),
    `resource_versions.last_updated <= ${t}`,
    `(resource_versions.superseded_at IS NULL OR resource_versions.superseded_at > ${t})`,
    scope.deletions ? 'resource_versions.deleted' : 'NOT resource_versions.deleted',
  ];
  // A tombstone has no compartment rows of its own: it belonged where the version it ended did.
  const compartmentVersion = scope.deletions ? 'resource_versions.version_id - 1' : 'resource_versions.version_id';
  if (scope.since && scope.compartment?.groupId && !scope.deletions) {
    // Group exports: a patient who joined after _since gets all of their data, others only changes.
    // (Deletions need no such widening: a new member's client never held their older data.)
    conditions.push(
      changedOrJoinedSql(scope.tenant, scope.compartment.groupId, scope.transactionTime, scope.since, 'resource_versions.last_updated', (joinedIds) => `EXISTS (SELECT 1 FROM unnest(resource_versions.compartment_patients) j(id)
       WHERE j.id = ANY(${joinedIds}))`),
    );
  } else if (scope.since) {
    conditions.push(`resource_versions.last_updated > ${instant(scope.since)}`);
  }
  if (scope.until) conditions.push(`resource_versions.last_updated <= ${instant(scope.until)}`);
  if (scope.filterSql) conditions.push(scope.filterSql);
  if (range.after) conditions.push(`(${key.lastUpdated}, ${key.id}) > (${instant(range.after.lastUpdated)}, ${literal(range.after.id)})`);
  if (range.upTo) conditions.push(`(${key.lastUpdated}, ${key.id}) <= (${instant(range.upTo.lastUpdated)}, ${literal(range.upTo.id)})`);
  if (!scope.recordedFor && scope.compartment && !scope.deletions) {
    conditions.push(inSelectedCompartments(scope));
  } else if (!scope.recordedFor && scope.compartment) {
    const patients = selectedPatients(scope.tenant, scope.compartment, scope.transactionTime);
    // A tombstone's compartments are those of the version it ended: a probe per (rare) tombstone.
    conditions.push(`EXISTS (SELECT 1 FROM compartment_memberships c
       WHERE c.tenant = resource_versions.tenant AND c.resource_type = resource_versions.resource_type
         AND c.resource_id = resource_versions.id AND c.version_id = ${compartmentVersion}
         ${patients.map((p) => `AND ${p}`).join(' ')} OFFSET 0)`);
  }
  return conditions.join('\n  AND ');
}

/**
 * A live version is in a selected patient's compartment: its own patient list (on the row read
 * anyway) against the resolved selection, a constant array that PostgreSQL checks by hash.
 */
function inSelectedCompartments(scope: SnapshotScope): string {
  const { groupId, patientIds, patientList } = scope.compartment!;
  // A kept list alone is probed by its primary key, row by row: no resolving of tens of
  // thousands of ids into every partition's statement.
  if (patientList && !groupId && !patientIds) {
    return `EXISTS (SELECT 1 FROM unnest(resource_versions.compartment_patients) p(id)
       WHERE EXISTS (SELECT 1 FROM export_patient_lists l WHERE l.tenant = ${literal(scope.tenant)} AND l.list_id = ${literal(patientList.id)} AND l.patient_id = p.id))`;
  }
  const all = !groupId && !patientIds && !patientList;
  if (!all && !scope.selectedPatients) throw new Error('a Group or patient-list scope must be resolved first (withSelectedPatients)');
  return inPatientsSql('resource_versions.compartment_patients', all ? undefined : scope.selectedPatients);
}

/** A version's patient list (`column`) names one of `patients` (undefined: is in some compartment). */
export function inPatientsSql(column: string, patients: string[] | undefined): string {
  if (!patients) return `${column} IS NOT NULL`;
  if (patients.length === 0) return 'false';
  return `EXISTS (SELECT 1 FROM unnest(${column}) p(id) WHERE p.id = ANY(ARRAY[${patients.map(literal).join(', ')}]::text[]))`;
}

/** The patients a Group or patient list selects at `at`; undefined: every patient. */
export async function resolvePatients(pool: Queryable, tenant: string, compartment: CompartmentFilter, at: string): Promise<string[] | undefined> {
  const sql = selectedPatientIds(tenant, compartment, at);
  if (!sql) return undefined;
  const { rows } = await pool.query<{ patient_id: string }>(sql);
  return rows.map((r) => r.patient_id);
}

/** The scope with its Group's or patient list's patients resolved at transactionTime (unchanged otherwise). */
export async function withSelectedPatients(pool: Queryable, scope: SnapshotScope): Promise<SnapshotScope> {
  if (!scope.compartment || scope.recordedFor || scope.deletions || scope.selectedPatients) return scope;
  const { groupId, patientIds, patientList } = scope.compartment;
  if (patientList && !groupId && !patientIds) return scope; // probed in the statement itself (inSelectedCompartments)
  const selectedPatients = await resolvePatients(pool, scope.tenant, scope.compartment, scope.transactionTime);
  return selectedPatients ? { ...scope, selectedPatients } : scope;
}

/** What withSelectedPatients needs of a pool or client. */
interface Queryable {
  query<R extends object>(sql: string): Promise<{ rows: R[] }>;
}
