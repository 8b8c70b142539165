/**
 * Resources an export adds because of what it exports, selected once when the export is planned
 * (at its transactionTime) and recorded in export_references; their partitions read the ids back.
 *  - Patient/Group exports: the Practitioners, Organizations, Locations and Medications that the
 *    selected compartments reference.
 *  - Associated Provenance (`includeAssociatedData`, or the IG's default rule for Patient/Group
 *    exports): Provenance whose target is an exported resource; "latest" keeps the most recent
 *    one per target (by `recorded`, then by last update).
 */
import type { Pool, PoolClient } from 'pg';
import { instant, literal, selectedPatients, snapshotFrom, snapshotWhere, type CompartmentFilter, type SnapshotScope } from './snapshot-scope';

export type ProvenanceSelection = 'relevant' | 'latest';

export interface SelectionRequest {
  exportId: string;
  tenant: string;
  transactionTime: string;
  compartment?: CompartmentFilter;
  /** Types outside the compartment to add when referenced (Patient/Group exports). */
  referencedTypes: string[];
  /**
   * Compartment types whose selection (the listed patients or a Group's members) is recorded
   * once, so partitions need not re-derive it: deriving it per partition made each partition of
   * a large Group re-read the whole selection.
   */
  selectedTypes?: string[];
  /** Associated Provenance, and the scopes of the exported types whose targets count. */
  provenance?: { selection: ProvenanceSelection; targetScopes: SnapshotScope[]; includeCompartment: boolean };
}

/** Replaces the export's recorded selection (a retried plan has a new transactionTime). */
export async function recordSelection(pool: Pool, request: SelectionRequest): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // A recording reads the whole selection at once, where hash and merge joins are linear
    // whatever the row estimates; a nested loop, chosen on a store with no statistics, rescans
    // per row (see snapshot-scope.ts). So this transaction plans without them.
    await client.query('SET LOCAL enable_nestloop = off');
    await client.query('DELETE FROM export_references WHERE export_id = $1', [request.exportId]);
    if (request.selectedTypes?.length && request.compartment) {
      await client.query(selectedSql(request.exportId, request.tenant, request.compartment, request.transactionTime, request.selectedTypes));
    }
    if (request.referencedTypes.length > 0 && request.compartment) {
      await client.query(referencedSql(request.exportId, request.tenant, request.compartment, request.transactionTime, request.referencedTypes));
    }
    if (request.provenance) await recordProvenance(client, request);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

async function recordProvenance(client: PoolClient, request: SelectionRequest): Promise<void> {
  const { exportId, tenant, transactionTime, provenance } = request;
  const t = instant(transactionTime);
  for (const scope of provenance!.targetScopes) {
    const candidates = `SELECT pt.target_id, pt.provenance_id, pt.version_id, pt.recorded, prov.last_updated
        FROM provenance_targets pt
        JOIN resource_versions prov ON prov.tenant = pt.tenant AND prov.resource_type = 'Provenance'
                                   AND prov.id = pt.provenance_id AND prov.version_id = pt.version_id
       WHERE pt.tenant = ${literal(tenant)} AND pt.target_type = ${literal(scope.resourceType)}
         AND prov.last_updated <= ${t} AND (prov.superseded_at IS NULL OR prov.superseded_at > ${t}) AND NOT prov.deleted
         AND pt.target_id IN (${exportedIds(scope)})`;
    const chosen =
      provenance!.selection === 'latest'
        ? `SELECT DISTINCT ON (target_id) provenance_id, version_id, last_updated FROM (${candidates}) c ORDER BY target_id, recorded DESC NULLS LAST, last_updated DESC, provenance_id`
        : `SELECT provenance_id, version_id, last_updated FROM (${candidates}) c`;
    await client.query(`INSERT INTO export_references (export_id, resource_type, id, at_version, at_last_updated)
      SELECT ${literal(exportId)}, 'Provenance', provenance_id, version_id, last_updated FROM (${chosen}) p ON CONFLICT DO NOTHING`);
  }
  if (provenance!.includeCompartment && request.compartment) {
    // Provenance in the selected compartments (those that target a Patient) stays in the export.
    const scope: SnapshotScope = { tenant, resourceType: 'Provenance', transactionTime, compartment: request.compartment };
    await client.query(`INSERT INTO export_references (export_id, resource_type, id, at_version, at_last_updated)
      SELECT ${literal(exportId)}, 'Provenance', id, version_id, last_updated FROM resource_versions WHERE ${snapshotWhere(scope)} ON CONFLICT DO NOTHING`);
  }
}

/** The ids a scope exports: a recording's own rows when nothing else narrows it (no version to fetch). */
function exportedIds(scope: SnapshotScope): string {
  if (scope.recordedFor && !scope.since && !scope.until && !scope.filterSql) {
    return `SELECT recorded.id FROM export_references recorded WHERE recorded.export_id = ${literal(scope.recordedFor)} AND recorded.resource_type = ${literal(scope.resourceType)}`;
  }
  return `SELECT resource_versions.id FROM ${snapshotFrom(scope)} WHERE ${snapshotWhere(scope)}`;
}

/**
 * The resources of `types` (outside the compartment) that the selected patients' compartment
 * resources current at `at` reference, in one set-oriented pass.
 */
function referencedSql(exportId: string, tenant: string, compartment: CompartmentFilter, at: string, types: string[]): string {
  const t = instant(at);
  const patients = selectedPatients(tenant, compartment, at);
  // Every indexed reference comes from a version in some compartment, so with no patient
  // selection (all patients) the references are read directly; otherwise from the selected
  // patients' compartment rows outwards (an index range per patient).
  const sources =
    patients.length === 0
      ? `resource_references r`
      : `(SELECT DISTINCT c.resource_type, c.resource_id, c.version_id FROM compartment_memberships c
           WHERE c.tenant = ${literal(tenant)} ${patients.map((p) => `AND ${p}`).join(' ')}) s
         JOIN resource_references r ON r.tenant = ${literal(tenant)} AND r.source_type = s.resource_type
                                   AND r.source_id = s.resource_id AND r.source_version = s.version_id`;
  // Each referenced resource is recorded with its version current at `at` (none: not recorded).
  return `INSERT INTO export_references (export_id, resource_type, id, at_version, at_last_updated)
    SELECT ${literal(exportId)}, tgt.resource_type, tgt.id, tgt.version_id, tgt.last_updated
      FROM (SELECT DISTINCT r.target_type, r.target_id
              FROM ${sources}
              JOIN resource_versions src ON src.tenant = r.tenant AND src.resource_type = r.source_type
                                        AND src.id = r.source_id AND src.version_id = r.source_version
             WHERE r.tenant = ${literal(tenant)} AND r.target_type IN (${types.map(literal).join(', ')})
               AND src.last_updated <= ${t} AND (src.superseded_at IS NULL OR src.superseded_at > ${t}) AND NOT src.deleted) referenced
      JOIN resource_versions tgt ON tgt.tenant = ${literal(tenant)} AND tgt.resource_type = referenced.target_type AND tgt.id = referenced.target_id
     WHERE tgt.last_updated <= ${t} AND (tgt.superseded_at IS NULL OR tgt.superseded_at > ${t}) AND NOT tgt.deleted
    ON CONFLICT DO NOTHING`;
}

/** The current resources of `types` in the selected patients' compartments, in one pass from the patients outwards. */
function selectedSql(exportId: string, tenant: string, compartment: CompartmentFilter, at: string, types: string[]): string {
  const t = instant(at);
  // A resource in several selected compartments comes once per patient: ON CONFLICT keeps one
  // (cheaper than DISTINCT, which sorted the whole selection).
  return `INSERT INTO export_references (export_id, resource_type, id, at_version, at_last_updated)
    SELECT ${literal(exportId)}, c.resource_type, c.resource_id, v.version_id, v.last_updated
      FROM compartment_memberships c
      JOIN resource_versions v ON v.tenant = c.tenant AND v.resource_type = c.resource_type
                              AND v.id = c.resource_id AND v.version_id = c.version_id
     WHERE c.tenant = ${literal(tenant)} ${selectedPatients(tenant, compartment, at).map((p) => `AND ${p}`).join(' ')}
       AND c.resource_type IN (${types.map(literal).join(', ')})
       AND v.last_updated <= ${t} AND (v.superseded_at IS NULL OR v.superseded_at > ${t}) AND NOT v.deleted
    ON CONFLICT DO NOTHING`;
}

/** Forgets an export's recorded selection (with its files). */
export async function forgetSelection(pool: Pool, exportId: string): Promise<void> {
  await pool.query('DELETE FROM export_references WHERE export_id = $1', [exportId]);
}
