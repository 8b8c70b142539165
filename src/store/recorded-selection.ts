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
import { inPatientsSql, resolvePatients, snapshotFrom, snapshotWhere, versionByKey, type SnapshotScope } from './snapshot-scope';
import type { ExportWindow } from '../contracts/export-window';
import { instant, literal } from './sql';

import type { ProvenanceSelection } from '../contracts/bulk-export';
import { withTransaction } from './transaction';

export interface SelectionRequest {
  exportId: string;
  /** The export's window (its `_since`/`_until` do not narrow what is added). */
  window: ExportWindow;
  /** Types outside the compartment to add when referenced (Patient/Group exports). */
  referencedTypes: string[];
  /** Associated Provenance, and the scopes of the exported types whose targets count. */
  provenance?: { selection: ProvenanceSelection; targetScopes: SnapshotScope[]; includeCompartment: boolean };
}

/** Replaces the export's recorded selection (a retried plan has a new transactionTime). */
export async function recordSelection(pool: Pool, request: SelectionRequest): Promise<void> {
  await withTransaction(pool, async (client) => {
    // A recording reads a whole selection at once, where hash and merge joins are linear
    // whatever the row estimates; a nested loop, chosen on a store with no statistics, rescans
    // per row (see snapshot-scope.ts). So this transaction plans joins without them (its
    // LATERAL probes are nested loops by construction, one index probe each).
    await client.query('SET LOCAL enable_nestloop = off');
    await client.query('DELETE FROM export_references WHERE export_id = $1', [request.exportId]);
    // A Group's or patient list's patients, resolved once for every statement below.
    const { tenant, transactionTime, compartment } = request.window;
    const patients = compartment && (await resolvePatients(client, tenant, compartment, transactionTime));
    if (request.referencedTypes.length > 0 && compartment) {
      await client.query(referencedSql(request.exportId, tenant, patients, transactionTime, request.referencedTypes));
    }
    if (request.provenance) await recordProvenance(client, request, patients);
  });
}

async function recordProvenance(client: PoolClient, request: SelectionRequest, selectedPatients: string[] | undefined): Promise<void> {
  const { exportId, provenance } = request;
  const { tenant, transactionTime, compartment } = request.window;
  const t = instant(transactionTime);
  for (const unresolved of provenance!.targetScopes) {
    const scope = { ...unresolved, selectedPatients };
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
  if (provenance!.includeCompartment && compartment) {
    // Provenance in the selected compartments (those that target a Patient) stays in the export.
    const scope: SnapshotScope = { tenant, resourceType: 'Provenance', transactionTime, compartment, selectedPatients };
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
 * The resources of `types` (outside the compartment) that a compartment resource current at
 * `at` of a selected patient (`patients`; undefined: every patient) references. Each distinct
 * target is checked by walking its references (resource_references_by_target) until one's source
 * version is current and selected (its own patient list says so): a few probes per target.
 */
function referencedSql(exportId: string, tenant: string, patients: string[] | undefined, at: string, types: string[]): string {
  const t = instant(at);
  const current = (v: string) => `${v}.last_updated <= ${t} AND (${v}.superseded_at IS NULL OR ${v}.superseded_at > ${t}) AND NOT ${v}.deleted`;
  // Each referenced resource is recorded with its version current at `at` (none: not recorded).
  return `INSERT INTO export_references (export_id, resource_type, id, at_version, at_last_updated)
    SELECT ${literal(exportId)}, tgt.resource_type, tgt.id, tgt.version_id, tgt.last_updated
      FROM (SELECT DISTINCT r.target_type, r.target_id FROM resource_references r
             WHERE r.tenant = ${literal(tenant)} AND r.target_type IN (${types.map(literal).join(', ')})) candidate
     CROSS JOIN LATERAL (SELECT * FROM resource_versions tgt
       WHERE tgt.tenant = ${literal(tenant)} AND tgt.resource_type = candidate.target_type AND tgt.id = candidate.target_id AND ${current('tgt')} OFFSET 0) tgt
     WHERE EXISTS (SELECT 1 FROM resource_references r
       ${versionByKey('src', { tenant: 'r.tenant', type: 'r.source_type', id: 'r.source_id', version: 'r.source_version' })}
       WHERE r.tenant = ${literal(tenant)} AND r.target_type = candidate.target_type AND r.target_id = candidate.target_id
         AND ${current('src')} AND ${inPatientsSql('src.compartment_patients', patients)} OFFSET 0)
    ON CONFLICT DO NOTHING`;
}

/** Forgets an export's recorded selection (with its files). */
export async function forgetSelection(pool: Pool, exportId: string): Promise<void> {
  await pool.query('DELETE FROM export_references WHERE export_id = $1', [exportId]);
}
