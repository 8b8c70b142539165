/**
 * Planning an export: fix its transactionTime, choose its types, record what it adds (referenced
 * resources, associated Provenance) and cut each type into partitions (or, organized by patient,
 * into ranges of patients).
 */
import type { Pool } from 'pg';
import { patientCompartmentTypes, patientLevelTypes, REFERENCED_TYPES } from '../src/fhir/patient-compartment';
import { ADDITIONAL_RESOURCE_TYPES } from '../src/fhir/resource-validation';
import { compileTypeFilter } from '../src/fhir/search/type-filter';
import { ResourceStore } from '../src/store/resource-store';
import { typeFilterSql } from '../src/store/search-sql';
import { recordSelection } from '../src/store/recorded-selection';
import type { SnapshotScope } from '../src/store/snapshot-scope';
import { capPartitions, planPartitions, storedResourceTypes } from '../src/store/snapshot-planner';
import { MAX_PARTITIONS } from '../src/contracts/history-budget';
import { planPatientBlocks } from '../src/store/patient-blocks';
import { BLOCKS, type ExportPlan, type PlanExportInput, type PlannedPartition, type ProvenanceSelection } from '../src/contracts/bulk-export';
import { atSnapshot, type CompartmentFilter, type Cursor, type ExportWindow } from '../src/contracts/export-window';

/**
 * Fixes the export's transactionTime (every write stamped at or before it has committed)
 * and cuts each requested type into partitions of about `partitionSize` resources.
 */
export async function planExport(pool: Pool, input: PlanExportInput): Promise<ExportPlan> {
  const { tenant, compartment } = input.window;
  const window = atSnapshot(input.window, await new ResourceStore(pool, tenant).snapshotTime());
  const { transactionTime } = window;
  // Without _type: every stored R4 type (the additional ViewDefinition is served, not exported, unless asked for).
  let types = input.types ?? (await storedResourceTypes(pool, tenant)).filter((t) => !ADDITIONAL_RESOURCE_TYPES.has(t));
  if (compartment && !input.types) {
    const exportable = new Set(patientLevelTypes());
    types = types.filter((t) => exportable.has(t));
  }
  const scopeOf = (type: string, recorded: boolean): SnapshotScope => ({
    ...window,
    resourceType: type,
    recordedFor: recorded ? input.exportId : undefined,
    filterSql: typeFilterSql(compileTypeFilter(type, input.typeFilters?.[type])),
  });
  if (input.organizeOutputBy && compartment) return planBlocks(pool, { ...window, compartment }, types, input);
  // Resources added because of what is exported are selected once, now, and recorded.
  const referencedTypes = compartment ? types.filter((t) => REFERENCED_TYPES.includes(t)) : [];
  const provenance = associatedProvenance(input, types);
  if (provenance && !types.includes('Provenance')) types = [...types, 'Provenance'];
  const addedTypes = [...referencedTypes, ...(provenance ? ['Provenance'] : [])];
  // The compartment types themselves are read from each version's own patient list (see
  // snapshot-scope.ts), so a Group's selection needs no recording.
  const recordedTypes = addedTypes;
  const recording =
    recordedTypes.length > 0
      ? recordSelection(pool, {
          exportId: input.exportId,
          window,
          referencedTypes,
          provenance: provenance && {
            ...provenance,
            targetScopes: types.filter((t) => t !== 'Provenance').map((t) => scopeOf(t, referencedTypes.includes(t))),
          },
        })
      : Promise.resolve();
  const totals: Record<string, number> = {};
  const deletedTotals: Record<string, number> = {};
  const partitions: PlannedPartition[] = [];
  // Deletions are reported only relative to a _since: without one the client holds nothing to delete.
  const planned = (window.since ? [false, true] : [false]).flatMap((deletions) =>
    types.filter((type) => !(deletions && addedTypes.includes(type))).map((type) => ({ type, deletions })), // a deleted Practitioner no longer says whose it was
  );
  // Two types are planned at once: each is one pass, and a single one leaves a core idle.
  const planAll = (list: typeof planned) =>
    mapConcurrently(list, 2, ({ type, deletions }) => {
      // Deletions are checked against _typeFilter one by one (on the version they ended), never in SQL.
      const scope = deletions ? { ...scopeOf(type, false), deletions, filterSql: undefined } : scopeOf(type, recordedTypes.includes(type));
      return planPartitions(pool, scope, input.partitionSize);
    });
  // The types read from the store itself are planned while the recording is written; the recorded ones after it.
  const readsRecording = ({ type, deletions }: (typeof planned)[number]) => !deletions && recordedTypes.includes(type);
  const [direct] = await Promise.all([planAll(planned.filter((p) => !readsRecording(p))), recording]);
  const fromRecording = await planAll(planned.filter(readsRecording));
  const plans = planned.map((p) => (readsRecording(p) ? fromRecording : direct).shift()!);
  const capped = capPartitions(plans.map((p) => (p.count === 0 ? [] : p.bounds)), input.maxPartitions ?? MAX_PARTITIONS);
  planned.forEach(({ type, deletions }, i) => {
    const { count } = plans[i];
    const bounds = capped[i];
    if (count === 0) return;
    const recorded = recordedTypes.includes(type);
    (deletions ? deletedTotals : totals)[type] = count;
    for (let p = 0; p <= bounds.length; p++) {
      partitions.push({ type, partition: p, after: bounds[p - 1], upTo: bounds[p], ...(deletions ? { deletions } : {}), ...(recorded && !deletions ? { recorded } : {}) });
    }
  });
  return { transactionTime, totals, deletedTotals, partitions };
}

/**
 * `organizeOutputBy=Patient`: partitions are ranges of patients whose blocks hold the compartment
 * types (referenced Practitioners etc. and non-compartment Provenance are left out, as the IG
 * allows); deletions since `_since` are planned per type as in every export.
 */
async function planBlocks(pool: Pool, window: ExportWindow & { compartment: CompartmentFilter }, types: string[], input: PlanExportInput): Promise<ExportPlan> {
  const compartmentTypes = new Set(patientCompartmentTypes());
  const blockTypes = types.filter((t) => compartmentTypes.has(t));
  const filterSql = Object.fromEntries(blockTypes.map((t) => [t, typeFilterSql(compileTypeFilter(t, input.typeFilters?.[t]))]));
  const scope = { ...window, types: blockTypes, filterSql };
  const blocks = await planPatientBlocks(pool, scope, input.partitionSize);
  const deletedTotals: Record<string, number> = {};
  const deleted: Array<{ type: string; bounds: Cursor[] }> = [];
  for (const type of window.since ? blockTypes : []) {
    const planned = await planPartitions(pool, { ...window, resourceType: type, deletions: true }, input.partitionSize);
    if (planned.count === 0) continue;
    deletedTotals[type] = planned.count;
    deleted.push({ type, bounds: planned.bounds });
  }
  // One cap over block ranges and deletion ranges alike (their bounds are of two kinds).
  const capped = capPartitions<string | Cursor>([blocks.count > 0 ? blocks.bounds : [], ...deleted.map((d) => d.bounds)], input.maxPartitions ?? MAX_PARTITIONS);
  const [blockBounds, ...deletedBounds] = capped as [string[], ...Cursor[][]];
  const { count } = blocks;
  const partitions: PlannedPartition[] = [];
  if (count > 0) {
    for (let i = 0; i <= blockBounds.length; i++) partitions.push({ type: BLOCKS, partition: i, blocks: { afterPatient: blockBounds[i - 1], upToPatient: blockBounds[i] } });
  }
  deleted.forEach(({ type }, d) => {
    const bounds = deletedBounds[d]!;
    for (let i = 0; i <= bounds.length; i++) partitions.push({ type, partition: i, after: bounds[i - 1], upTo: bounds[i], deletions: true });
  });
  return { transactionTime: window.transactionTime, blockTypes, totals: count > 0 ? { [BLOCKS]: count } : {}, deletedTotals, partitions };
}

/**
 * Which Provenance to add: what `includeAssociatedData` asked for, or by the IG's default rule
 * the Provenance of the exported compartment resources for Patient/Group exports (unless `_type`
 * leaves Provenance out). A system export that holds every Provenance anyway adds nothing.
 */
function associatedProvenance(input: PlanExportInput, types: string[]): { selection: ProvenanceSelection; includeCompartment: boolean } | undefined {
  const { compartment } = input.window;
  if (!compartment && types.includes('Provenance')) return undefined;
  const byDefault = compartment !== undefined && (!input.types || input.types.includes('Provenance'));
  const selection = input.associatedProvenance ?? (byDefault ? 'relevant' : undefined);
  return selection && { selection, includeCompartment: byDefault };
}

/** `fn` over `items`, at most `limit` at a time; results in the order of `items`. */
async function mapConcurrently<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
