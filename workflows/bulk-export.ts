import {
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  setHandler,
  setCurrentDetails,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { exportMetrics } from './export-metrics';
import { progressDetails } from './visibility';
import { exportResourceCountKey, exportStateKey } from './search-attribute-keys';
import { controlActivities, partitionActivities, planningActivities } from './activity-options';
import { inParallel } from './parallel';
import { FAILURES_END_CLEANLY } from './patches';
import { locationOf, partLimits, type ExportInput, type ExportPartitionResult, type ExportStatus, type PartFile } from '../src/contracts/bulk-export';
import { atSnapshot } from '../src/contracts/export-window';
import { maxPartitionsFor } from '../src/contracts/history-budget';
import { readExportInput } from '../src/contracts/legacy-shapes';

export const statusQuery = defineQuery<ExportStatus>('status');
/** Sent to a scheduled run (the parent) when the export's files are complete. */
export const exportFinishedSignal = defineSignal<[ExportStatus]>('exportFinished');

const quick = controlActivities();

/**
 * One FHIR bulk export: fix transactionTime and plan partitions, export the partitions with
 * bounded parallelism, publish the manifest data, keep the files until they expire, then
 * delete them. Cancellation (DELETE) at any point deletes the files and ends the run.
 */
export async function bulkExport(received: ExportInput): Promise<void> {
  const input = readExportInput(received); // exports started by older releases carry a flat window
  const status: ExportStatus = {
    exportId: input.exportId,
    phase: 'planning',
    request: input.request,
    ...(input.manifestShape === 'stu4' ? { manifestShape: input.manifestShape } : {}),
    startedAt: new Date().toISOString(),
    types: {},
    deletedTypes: {},
    partitionsDone: 0,
    partitionsTotal: 0,
    output: [],
    deleted: [],
    error: [],
  };
  setHandler(statusQuery, () => status);
  const location = locationOf(input);
  const endsCleanly = patched(FAILURES_END_CLEANLY);

  const { exportPartition, exportPatientBlocks } = partitionActivities(input.tuning.heartbeatTimeoutMs);
  const { planExport } = planningActivities(input.tuning.heartbeatTimeoutMs);

  try {
    const plan = await planExport({
      exportId: input.exportId,
      window: input.window,
      types: input.types,
      typeFilters: input.typeFilters,
      associatedProvenance: input.associatedProvenance,
      organizeOutputBy: input.organizeOutputBy,
      partitionSize: input.tuning.partitionSize,
      // What every partition's input repeats bounds how many there may be (history-budget.ts).
      maxPartitions: maxPartitionsFor(JSON.stringify([input.elements ?? null, input.typeFilters ?? null]).length),
    });
    status.transactionTime = plan.transactionTime;
    status.organizedBy = input.organizeOutputBy;
    if (input.allowPartialManifests) status.manifestPageFiles = input.tuning.manifestPageFiles;
    for (const [type, total] of Object.entries(plan.totals)) status.types[type] = { total, exported: 0 };
    for (const [type, total] of Object.entries(plan.deletedTotals ?? {})) status.deletedTypes[type] = { total, exported: 0 };
    status.partitionsTotal = plan.partitions.length;
    status.phase = 'exporting';
    const partsByType = new Map<string, number>();
    setCurrentDetails(progressDetails(status, partsByType));

    const window = atSnapshot(input.window, plan.transactionTime);
    const limits = partLimits(input.tuning);
    const results: ExportPartitionResult[] = [];
    await inParallel(plan.partitions, input.tuning.maxParallelPartitions, async (partition) => {
      // The activity's summary names the partition in the Web UI.
      const summary = partition.blocks
        ? `patient blocks, partition ${partition.partition + 1}`
        : `${partition.type}${partition.deletions ? ' deletions' : ''}, partition ${partition.partition + 1} of ${plan.partitions.filter((p) => p.type === partition.type && !!p.deletions === !!partition.deletions).length}`;
      const { elements, typeFilters, lenient } = input;
      const result = partition.blocks
        ? await exportPatientBlocks.executeWithOptions({ summary }, [
            { location, window, partition, limits, types: plan.blockTypes!, elements, typeFilters },
          ])
        : await exportPartition.executeWithOptions({ summary }, [{ location, window, partition, limits, elements, filters: typeFilters?.[partition.type], ...(lenient ? { lenient } : {}) }]);
      results.push(result);
      if (!result.deletions) partsByType.set(result.type, (partsByType.get(result.type) ?? 0) + result.parts.length);
      if (status.manifestPageFiles && !result.deletions) status.output.push(...result.parts);
      (result.deletions ? status.deletedTypes : status.types)[result.type].exported += result.parts.reduce((n, p) => n + p.count, 0);
      status.partitionsDone++;
      setCurrentDetails(progressDetails(status, partsByType)); // per partition, not per page: history stays small
    }, endsCleanly);

    // Partial manifests already listed files in the order they finished; pages must not change.
    if (!status.manifestPageFiles) status.output = orderedParts(results.filter((r) => !r.deletions));
    status.deleted = orderedParts(results.filter((r) => r.deletions));
    // Kick-off issues, then the resources partitions left out (lenient handling), in partition order.
    const issues = [...input.lenientIssues, ...[...results].sort((a, b) => (a.type === b.type ? a.partition - b.partition : a.type < b.type ? -1 : 1)).flatMap((r) => r.issues ?? [])];
    if (issues.length > 0) {
      status.error = [await quick.writeErrorFile({ ...location, issues })];
    }
    const completedAt = Date.now();
    status.completedAt = new Date(completedAt).toISOString();
    status.expiresAt = new Date(completedAt + input.tuning.retentionMs).toISOString();
    status.phase = 'completed';
    const exported = Object.values(status.types).reduce((n, t) => n + t.exported, 0);
    upsertSearchAttributes([
      { key: exportStateKey, value: 'completed' },
      { key: exportResourceCountKey, value: exported },
    ]);
    setCurrentDetails(progressDetails(status, partsByType));
    upsertMemo({
      resourceCounts: Object.fromEntries(Object.entries(status.types).map(([t, p]) => [t, p.exported])),
      deletedCounts: Object.fromEntries(Object.entries(status.deletedTypes).map(([t, p]) => [t, p.exported])),
      files: status.output.length + status.deleted.length,
      transactionTime: status.transactionTime,
      expiresAt: status.expiresAt,
    });
    exportMetrics.finished('bulk', input.level, location.tenant, 'completed');

    if (input.notifyParent) await tellParent(status);

    // Keep the files until they expire; DELETE (cancellation) ends this wait early.
    await condition(() => false, input.tuning.retentionMs);
    await quick.deleteExportFiles(location);
  } catch (err) {
    upsertSearchAttributes([{ key: exportStateKey, value: isCancellation(err) ? 'cancelled' : 'failed' }]);
    // A DELETE of a completed export ends its retention early: it was counted as completed.
    if (status.phase !== 'completed') exportMetrics.finished('bulk', input.level, location.tenant, isCancellation(err) ? 'cancelled' : 'failed');
    // Cancelled: the client asked for nothing more. Failed: no manifest will ever name the files.
    if (isCancellation(err)) await CancellationScope.nonCancellable(() => quick.deleteExportFiles(location));
    // A cleanup that fails too (the bucket is gone) must not hide why the export failed.
    else if (endsCleanly) await CancellationScope.nonCancellable(() => quick.deleteExportFiles(location)).catch(() => undefined);
    throw err;
  }
}

/** A scheduled run waits for its export's files, not for their expiry: tell it they are complete. */
async function tellParent(status: ExportStatus): Promise<void> {
  const parent = workflowInfo().parent;
  if (!parent) return;
  try {
    await getExternalWorkflowHandle(parent.workflowId, parent.runId).signal(exportFinishedSignal, status);
  } catch {
    // The run was terminated: the export stands on its own until it expires.
  }
}

/** Files in a stable order: by type, then partition, then part. */
function orderedParts(results: ExportPartitionResult[]): PartFile[] {
  return [...results]
    .sort((a, b) => (a.type === b.type ? a.partition - b.partition : a.type < b.type ? -1 : 1))
    .flatMap((r) => r.parts);
}
