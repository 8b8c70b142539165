/**
 * An export's `patient` list, kept once in the store (export_patient_lists) and named by
 * reference in its workflow: the list may hold tens of thousands of ids, and every partition's
 * input would otherwise repeat it in the workflow's history.
 */
import type { Pool } from 'pg';
import type { CompartmentFilter } from '../contracts/export-window';

/** Keeps `patientIds` under `listId` (the export's id); idempotent. Returns the compartment that names it. */
export async function keepPatientList(pool: Pool, tenant: string, listId: string, patientIds: readonly string[]): Promise<NonNullable<CompartmentFilter['patientList']>> {
  const unique = [...new Set(patientIds)];
  await pool.query(
    `INSERT INTO export_patient_lists (tenant, list_id, patient_id)
     SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING`,
    [tenant, listId, unique],
  );
  return { id: listId, count: unique.length };
}

/** Forgets the list (with the export's files). */
export async function forgetPatientList(pool: Pool, listId: string): Promise<void> {
  await pool.query('DELETE FROM export_patient_lists WHERE list_id = $1', [listId]);
}
