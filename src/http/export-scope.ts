/**
 * The population an export reads, checked before it starts (`$export` at Group and Patient level,
 * `$sql-export` with `group` and `patient`): the Group exists (404) and does not contain itself
 * through nested Groups (400); every `patient` is a stored Patient and, with a Group, one of its
 * active members (400).
 */
import { OperationOutcomeError } from '../fhir/outcome-error';
import { FHIR_ID } from '../fhir/resource-validation';
import type { ResourceStore } from '../store/resource-store';

export async function checkExportScope(store: ResourceStore | undefined, scope: { groupId?: string; patientIds?: string[] }): Promise<void> {
  const { groupId, patientIds } = scope;
  if (groupId !== undefined) {
    if (!FHIR_ID.test(groupId)) throw OperationOutcomeError.notFound(`Group/${groupId} is not known`);
    const group = store ? await store.read('Group', groupId) : undefined;
    if (!group || group.deleted) throw OperationOutcomeError.notFound(`Group/${groupId} is not known`);
    const cycle = await store!.groupCycle(groupId);
    if (cycle) throw new OperationOutcomeError('business-rule', `Group/${groupId} contains itself through nested Groups: ${cycle.map((g) => `Group/${g}`).join(' → ')}`);
  }
  if (!patientIds) return;
  const known = store ? await store.existingIds('Patient', patientIds) : new Set<string>();
  const unknown = patientIds.filter((p) => !known.has(p));
  if (unknown.length > 0) throw OperationOutcomeError.invalid(`patient names unknown patients: ${unknown.map((p) => `Patient/${p}`).join(', ')}`, 'patient');
  if (groupId !== undefined && store) {
    const members = await store.groupPatientsAmong(groupId, patientIds);
    const outside = patientIds.filter((p) => !members.has(p));
    if (outside.length > 0) throw OperationOutcomeError.invalid(`patient names patients who are not members of Group/${groupId}: ${outside.map((p) => `Patient/${p}`).join(', ')}`, 'patient');
  }
}
