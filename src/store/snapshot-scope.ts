/**
 * What an export reads, as SQL: the resource versions of one type current at transactionTime,
 * within _since/_until, and for Patient/Group exports only those in the compartments of the
 * selected patients. Built with quoted literals because COPY takes no parameters; every value
 * is an id checked against the FHIR id pattern or an instant produced by bulkflow.
 */

/** A position in (last_updated, id) order; ranges start after it. */
export interface Cursor {
  lastUpdated: string;
  id: string;
}

/** Which patients' compartments a Patient- or Group-level export covers. */
export interface CompartmentFilter {
  /** Only the active members of this Group (at transactionTime). */
  groupId?: string;
  /** Only these patients (the `patient` kick-off parameter). */
  patientIds?: string[];
}

export interface SnapshotScope {
  tenant: string;
  resourceType: string;
  transactionTime: string;
  /** Only versions changed after this instant (`_since`). */
  since?: string;
  /** Only versions changed at or before this instant (`_until`). */
  until?: string;
  /** Present for Patient and Group exports: only resources in a selected patient's compartment. */
  compartment?: CompartmentFilter;
  /**
   * Only the versions of this type that export `recordedFor` recorded when it was planned (a
   * Group's or patient list's compartments, referenced resources, associated Provenance): see
   * recorded-selection.ts. They are read from the recording, in its order, by key.
   */
  recordedFor?: string;
  /** An extra SQL condition on resource_versions (the pushable part of `_typeFilter`). */
  filterSql?: string;
  /** Read the deletions instead: tombstones current at transactionTime (`_since` exports report them). */
  deletions?: boolean;
}

export const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;
export const instant = (value: string) => `${literal(value)}::timestamptz`;

/** Conditions for a group_memberships row (alias `m`) that counts at `at`: active, in period, of the Group version current then. */
function activeMembership(m: string, tenant: string, at: string): string {
  const t = instant(at);
  return `${m}.tenant = ${literal(tenant)} AND NOT ${m}.inactive
      AND (${m}.period_start IS NULL OR ${m}.period_start <= ${t}) AND (${m}.period_end IS NULL OR ${m}.period_end > ${t})
      AND EXISTS (SELECT 1 FROM resource_versions g
                   WHERE g.tenant = ${m}.tenant AND g.resource_type = 'Group' AND g.id = ${m}.group_id AND g.version_id = ${m}.version_id
                     AND g.last_updated <= ${t} AND (g.superseded_at IS NULL OR g.superseded_at > ${t}) AND NOT g.deleted)`;
}

/** The Groups reachable from `groupId` through active Group members at `at` (itself included), with the path to each. */
function nestedGroupsSql(tenant: string, groupId: string, at: string): string {
  return `WITH RECURSIVE nested(id, path, cycle) AS (
      SELECT ${literal(groupId)}::text COLLATE "C", ARRAY[${literal(groupId)}::text COLLATE "C"], false
      UNION ALL
      SELECT m.member_id, nested.path || m.member_id, m.member_id = ANY(nested.path)
        FROM nested JOIN group_memberships m ON m.group_id = nested.id
       WHERE NOT nested.cycle AND m.member_type = 'Group' AND ${activeMembership('m', tenant, at)})`;
}

/** The patients of a Group at `at`, nested Groups included (a cycle is followed once, never forever). */
export function groupPatientsSql(tenant: string, groupId: string, at: string): string {
  return `${nestedGroupsSql(tenant, groupId, at)}
    SELECT m.member_id FROM group_memberships m
     WHERE m.group_id IN (SELECT id FROM nested WHERE NOT cycle) AND m.member_type = 'Patient' AND ${activeMembership('m', tenant, at)}`;
}

/**
 * Group exports with `_since`: a patient who joined after `_since` gets all of their data, the
 * others only changes. `inJoined` says, given the joined patients' SQL, that the row is theirs.
 */
export function changedOrJoinedSql(tenant: string, groupId: string, transactionTime: string, since: string, lastUpdated: string, inJoined: (joined: string) => string): string {
  const joined = `(${groupPatientsSql(tenant, groupId, transactionTime)})
       EXCEPT (${groupPatientsSql(tenant, groupId, since)})`;
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
  return conditions;
}

/**
 * What a scope reads from: resource_versions, or for a recorded selection the recording
 * (alias `recorded`) joined to the exact versions it names.
 */
export function snapshotFrom(scope: SnapshotScope): string {
  if (!scope.recordedFor) return 'resource_versions';
  return `export_references recorded JOIN resource_versions
      ON resource_versions.tenant = ${literal(scope.tenant)} AND resource_versions.resource_type = recorded.resource_type
     AND resource_versions.id = recorded.id AND resource_versions.version_id = recorded.at_version`;
}

/** The (last_updated, id) order of a scope, as the columns its index keeps in that order. */
export function snapshotKey(scope: SnapshotScope): { lastUpdated: string; id: string } {
  return scope.recordedFor ? { lastUpdated: 'recorded.at_last_updated', id: 'recorded.id' } : { lastUpdated: 'resource_versions.last_updated', id: 'resource_versions.id' };
}

/** The WHERE clause (FROM snapshotFrom(scope)) of a scope and an optional (after, upTo] range. */
export function snapshotWhere(scope: SnapshotScope, range: { after?: Cursor; upTo?: Cursor } = {}): string {
  const t = instant(scope.transactionTime);
  const key = snapshotKey(scope);
  const conditions = [
    ...(scope.recordedFor ? [`recorded.export_id = ${literal(scope.recordedFor)}`, `recorded.resource_type = ${literal(scope.resourceType)}`] : []),
    `resource_versions.tenant = ${literal(scope.tenant)}`,
    `resource_versions.resource_type = ${literal(scope.resourceType)}`,
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
      changedOrJoinedSql(scope.tenant, scope.compartment.groupId, scope.transactionTime, scope.since, 'resource_versions.last_updated', (joined) => `EXISTS (SELECT 1 FROM compartment_memberships j
       WHERE j.tenant = resource_versions.tenant AND j.resource_type = resource_versions.resource_type
         AND j.resource_id = resource_versions.id AND j.version_id = resource_versions.version_id
         AND j.patient_id IN (${joined}))`),
    );
  } else if (scope.since) {
    conditions.push(`resource_versions.last_updated > ${instant(scope.since)}`);
  }
  if (scope.until) conditions.push(`resource_versions.last_updated <= ${instant(scope.until)}`);
  if (scope.filterSql) conditions.push(scope.filterSql);
  if (range.after) conditions.push(`(${key.lastUpdated}, ${key.id}) > (${instant(range.after.lastUpdated)}, ${literal(range.after.id)})`);
  if (range.upTo) conditions.push(`(${key.lastUpdated}, ${key.id}) <= (${instant(range.upTo.lastUpdated)}, ${literal(range.upTo.id)})`);
  if (!scope.recordedFor && scope.compartment) {
    const patients = selectedPatients(scope.tenant, scope.compartment, scope.transactionTime);
    conditions.push(`EXISTS (SELECT 1 FROM compartment_memberships c
       WHERE c.tenant = resource_versions.tenant AND c.resource_type = resource_versions.resource_type
         AND c.resource_id = resource_versions.id AND c.version_id = ${compartmentVersion}
         ${patients.map((p) => `AND ${p}`).join(' ')})`);
  }
  return conditions.join('\n  AND ');
}
