import { ApplicationFailure, CancellationScope, executeChild, isCancellation, ParentClosePolicy, proxyActivities, setCurrentDetails, startChild, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { fullBecause, lakeRunName, type LakeSubject, type ScheduledViewExportInput } from '../src/contracts/lake-export';
import type { ScheduledRunResult } from '../src/contracts/scheduled-export';
import type { ViewExportInput, ViewExportStatus } from '../src/contracts/view-export';
import { exportMetrics } from './export-metrics';
import { deliverWebhook, rootCause } from './scheduled-export';
import { viewExport } from './view-export';
import { viewExportStartOptions } from './visibility';

const ledger = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
/** A run's file work grows with the run: long, but heartbeating, so a dead worker's attempt is retried within the heartbeat timeout. */
const fileActivities = (heartbeatTimeoutMs: number) =>
  proxyActivities<Activities>({ startToCloseTimeout: '1 hour', heartbeatTimeout: heartbeatTimeoutMs, retry: { initialInterval: '1 second', maximumInterval: '30 seconds' } });

/**
 * One run of a lake schedule (the action of its Temporal Schedule): each subject's table gets a
 * `run=<snapshot>` folder. Tables due a full run (SQL subjects, `mode: full`, a table's first
 * run, a changed view, every `fullEvery`th run) are exported whole first; then the incremental
 * views with `_since` = the watermark at the same snapshot, plus each one's deletions. The
 * watermark moves to that snapshot (compare-and-set), the staged files move into the tables, the run
 * manifest is written last, and tables that ran full drop the run folders they superseded.
 */
export async function scheduledViewExport(input: ScheduledViewExportInput): Promise<ScheduledRunResult> {
  const { tenant, scheduleId, destination } = input;
  const { workflowId, runId } = workflowInfo();
  const files = fileActivities(input.tuning.heartbeatTimeoutMs);
  const run = await ledger.beginScheduledRun({ tenant, scheduleId, workflowId, runId });
  const staged = [`${run.exportId}-full`, `${run.exportId}-inc`, `${run.exportId}-deleted`];
  try {
    await ledger.checkLakeSubjects({ tenant, subjects: input.subjects });
    const { completedRuns, previous } = await ledger.lakeHistory({ tenant, scheduleId });
    const why = new Map(input.subjects.map((s) => [s.name, run.watermark ? fullBecause(s, previous, completedRuns, input.fullEvery) : 'first']));
    const full = input.subjects.filter((s) => why.get(s.name) !== undefined);
    const incremental = input.subjects.filter((s) => why.get(s.name) === undefined);
    setCurrentDetails(`Lake run of schedule ${scheduleId}: ${input.subjects.map((s) => `${s.name} (${why.get(s.name) ? 'full' : 'incremental'})`).join(', ')}`);

    // Both exports at one snapshot, the run's: every table reaches it, and the watermark moves to it.
    const fullStatus = full.length > 0 ? await exportOf(input, full, `${run.exportId}-full`) : undefined;
    const incStatus = incremental.length > 0 ? await exportOf(input, incremental, `${run.exportId}-inc`, run.watermark, fullStatus?.transactionTime) : undefined;
    const snapshot = (fullStatus ?? incStatus)!.transactionTime!;
    const subjects = [];
    for (const subject of input.subjects) {
      const status = why.get(subject.name) ? fullStatus! : incStatus!;
      const deleted =
        why.get(subject.name) === undefined
          ? await files.writeLakeDeletions({ tenant, destination, stagingFolder: `${run.exportId}-deleted`, subject: subject.name, type: subject.view!.resource, keyColumn: subject.keyColumn!, since: run.watermark!, snapshot: status.transactionTime!, format: input.format })
          : undefined;
      subjects.push({
        name: subject.name,
        mode: subject.mode,
        ...(why.get(subject.name) ? { fullBecause: why.get(subject.name) } : {}),
        snapshot: status.transactionTime!,
        parts: status.views[subject.name].parts,
        ...(deleted ? { deleted } : {}),
        ...(subject.keyColumn ? { keyColumn: subject.keyColumn } : {}),
        digest: subject.digest,
      });
    }
    const { state, manifest } = await files.completeLakeRun({ tenant, scheduleId, exportId: run.exportId, watermark: run.watermark, destination, run: lakeRunName(snapshot), snapshot, format: input.format, subjects, staged });
    if (state === 'completed') {
      if (full.length > 0) await files.pruneLakeRuns({ tenant, destination, subjects: full.map((s) => s.name), retentionMs: input.retentionMs, now: new Date().toISOString() });
      const rows = Object.values(manifest.subjects).reduce((n, s) => n + s.rows, 0);
      const bytes = Object.values(manifest.subjects).reduce((n, s) => n + s.bytes, 0);
      exportMetrics.lakeRun(tenant, scheduleId, 'completed', rows, bytes);
      if (input.webhookUrl) {
        await startChild(deliverWebhook, {
          workflowId: `${run.exportId}-webhook`,
          args: [{ url: input.webhookUrl, body: { scheduleId, tenant, exportId: run.exportId, since: run.watermark, transactionTime: snapshot, manifest } }],
          parentClosePolicy: ParentClosePolicy.ABANDON,
          staticSummary: `Run manifest webhook of lake schedule ${scheduleId}, run ${manifest.run}`,
        });
      }
    }
    return { exportId: run.exportId, since: run.watermark, transactionTime: snapshot, state };
  } catch (err) {
    const cancelled = isCancellation(err);
    await CancellationScope.nonCancellable(async () => {
      await files.dropLakeStaging({ tenant, destination, staged });
      await ledger.endScheduledRun({ tenant, exportId: run.exportId, state: cancelled ? 'cancelled' : 'failed', reason: rootCause(err) });
    });
    exportMetrics.lakeRun(tenant, scheduleId, cancelled ? 'cancelled' : 'failed', 0, 0);
    if (cancelled) throw err;
    throw ApplicationFailure.nonRetryable(`Run ${run.exportId} of lake schedule ${scheduleId} failed: ${rootCause(err)}`, 'ScheduledViewExportFailed');
  }
}

/** A `$sql-export` of `subjects` into the run's staging folder, waited for; `since` makes it incremental. */
async function exportOf(input: ScheduledViewExportInput, subjects: LakeSubject[], exportId: string, since?: string, transactionTime?: string): Promise<ViewExportStatus> {
  const views = subjects.flatMap((s) => (s.view ? [s.view] : []));
  const sqlSubjects = subjects.flatMap((s) => (s.sql ? [s.sql] : []));
  const exportInput: ViewExportInput = {
    exportId,
    level: input.compartment?.groupId ? 'group' : input.compartment ? 'patient' : 'system',
    owner: input.owner,
    request: input.request,
    window: { tenant: input.tenant, ...(since ? { since } : {}), ...(input.compartment ? { compartment: input.compartment } : {}) },
    views,
    ...(sqlSubjects.length > 0 ? { sqlSubjects } : {}),
    format: input.format,
    header: input.header,
    tuning: input.tuning,
    outputPrefix: `${input.destination}/_staging`,
    handOver: true,
    ...(transactionTime ? { transactionTime } : {}),
  };
  const status = await executeChild(viewExport, { workflowId: exportId, args: [exportInput], ...viewExportStartOptions(exportInput) });
  return status!;
}
