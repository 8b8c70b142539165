import {
  CancellationScope,
  condition,
  defineQuery,
  isCancellation,
  patched,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { exportMetrics } from './export-metrics';
import { controlActivities, partitionActivities, planningActivities } from './activity-options';
import { inParallel } from './parallel';
import { FAILURES_END_CLEANLY } from './patches';
import { partLimits } from '../src/contracts/bulk-export';
import { atSnapshot } from '../src/contracts/export-window';
import { maxPartitionsFor } from '../src/contracts/history-budget';
import type { ExportedSqlSubject, ExportedView, SqlSubjectResult, ViewExportInput, ViewExportStatus, ViewPartitionResult } from '../src/contracts/view-export';
import { exportResourceCountKey, exportStateKey } from './search-attribute-keys';
import { viewProgressDetails } from './visibility';

export const viewExportStatusQuery = defineQuery<ViewExportStatus>('viewExportStatus');

const quick = controlActivities();

/**
 * One `$sql-export`: fix the snapshot and plan partitions of each type the views read, run each
 * view over each of its type's partitions and each SQL subject whole (one activity that makes
 * its tables at the snapshot), with bounded parallelism, rows into part files; keep the files
 * until they expire, then delete them. Cancellation deletes them at once. An input without SQL
 * subjects (every earlier one) schedules exactly what it did before.
 */
export async function viewExport(input: ViewExportInput): Promise<ViewExportStatus | undefined> {
  const sqlSubjects = input.sqlSubjects ?? [];
  const status: ViewExportStatus = {
    exportId: input.exportId,
    phase: 'planning',
    request: input.request,
    clientTrackingId: input.clientTrackingId,
    format: input.format,
    startedAt: new Date().toISOString(),
    views: Object.fromEntries([
      ...input.views.map((v) => [v.name, { resource: v.resource, resources: 0, read: 0, rows: 0, parts: [] }]),
      ...sqlSubjects.map((s) => [s.name, { resource: 'Library', resources: 0, read: 0, rows: 0, parts: [] }]),
    ]),
    partitionsDone: 0,
    partitionsTotal: 0,
  };
  setHandler(viewExportStatusQuery, () => status);
  const location = { tenant: input.window.tenant, exportId: input.exportId, ...(input.outputPrefix ? { outputPrefix: input.outputPrefix } : {}) };
  const endsCleanly = patched(FAILURES_END_CLEANLY);
  const { exportViewPartition, exportSqlSubject } = partitionActivities(input.tuning.heartbeatTimeoutMs);
  const { planViewExport } = planningActivities(input.tuning.heartbeatTimeoutMs);

  try {
    const types = [...new Set(input.views.map((v) => v.resource))];
    const plan = await planViewExport({
      exportId: input.exportId,
      window: input.window,
      types,
      partitionSize: input.tuning.partitionSize,
      // Each partition's input repeats its view: the largest bounds how many there may be (history-budget.ts).
      maxPartitions: maxPartitionsFor(Math.max(0, ...input.views.map((v) => JSON.stringify(v).length))),
      viewsPerType: Object.fromEntries(types.map((t) => [t, input.views.filter((v) => v.resource === t).length])),
      ...(input.transactionTime ? { transactionTime: input.transactionTime } : {}),
    });
    status.transactionTime = plan.transactionTime;
    const window = atSnapshot(input.window, plan.transactionTime);
    const limits = partLimits(input.tuning);
    type Work = { view: ExportedView; partition: (typeof plan.partitions)[number] } | { sql: ExportedSqlSubject };
    const work: Work[] = [
      ...input.views.flatMap((view) => plan.partitions.filter((p) => p.type === view.resource).map((partition) => ({ view, partition }))),
      ...sqlSubjects.map((sql) => ({ sql })),
    ];
    for (const view of input.views) status.views[view.name].resources = plan.totals[view.resource] ?? 0;
    status.partitionsTotal = work.length;
    status.phase = 'exporting';
    setCurrentDetails(viewProgressDetails(status));

    const results: ViewPartitionResult[] = [];
    const sqlResults: SqlSubjectResult[] = [];
    await inParallel(
      work,
      input.tuning.maxParallelPartitions,
      async (item) => {
        if ('sql' in item) {
          const result = await exportSqlSubject.executeWithOptions({ summary: `SQL subject ${item.sql.name}` }, [{ location, window, limits, subject: item.sql, format: input.format, header: input.header }]);
          sqlResults.push(result);
          status.views[result.name].rows = result.rows;
          status.views[result.name].sql = { tableRows: result.tableRows, timings: result.timings };
          status.partitionsDone++;
          setCurrentDetails(viewProgressDetails(status));
          return;
        }
        const { view, partition } = item;
        const of = plan.partitions.filter((p) => p.type === view.resource).length;
        const summary = `view ${view.name} (${view.resource}), partition ${partition.partition + 1} of ${of}`;
        const result = await exportViewPartition.executeWithOptions({ summary }, [{ location, window, partition, limits, view, format: input.format, header: input.header }]);
        results.push(result);
        const progress = status.views[result.view];
        progress.read += result.resources;
        progress.rows += result.parts.reduce((n, p) => n + p.count, 0);
        status.partitionsDone++;
        setCurrentDetails(viewProgressDetails(status));
      },
      endsCleanly,
    );

    // Files per view in partition, part order: the manifest lists them so.
    for (const result of [...results].sort((a, b) => a.partition - b.partition)) status.views[result.view].parts.push(...result.parts);
    for (const result of sqlResults) status.views[result.name].parts.push(...result.parts);
    const completedAt = Date.now();
    status.completedAt = new Date(completedAt).toISOString();
    status.expiresAt = new Date(completedAt + input.tuning.retentionMs).toISOString();
    status.phase = 'completed';
    const rows = Object.values(status.views).reduce((n, v) => n + v.rows, 0);
    upsertSearchAttributes([
      { key: exportStateKey, value: 'completed' },
      { key: exportResourceCountKey, value: rows },
    ]);
    setCurrentDetails(viewProgressDetails(status));
    upsertMemo({ rowsPerView: Object.fromEntries(Object.entries(status.views).map(([name, v]) => [name, v.rows])), transactionTime: status.transactionTime, expiresAt: status.expiresAt });
    exportMetrics.finished('view', input.level, location.tenant, 'completed');
    // A lake run takes the files over: they are its tables' now, not this export's to expire.
    if (input.handOver) return status;

    await condition(() => false, input.tuning.retentionMs);
    await quick.deleteExportFiles(location);
    return undefined;
  } catch (err) {
    upsertSearchAttributes([{ key: exportStateKey, value: isCancellation(err) ? 'cancelled' : 'failed' }]);
    if (status.phase !== 'completed') exportMetrics.finished('view', input.level, location.tenant, isCancellation(err) ? 'cancelled' : 'failed');
    // Cancelled: the client asked for nothing more. Failed: no result will ever name the files.
    if (isCancellation(err)) await CancellationScope.nonCancellable(() => quick.deleteExportFiles(location));
    // A cleanup that fails too (the bucket is gone) must not hide why the export failed.
    else if (endsCleanly) await CancellationScope.nonCancellable(() => quick.deleteExportFiles(location)).catch(() => undefined);
    throw err;
  }
}
