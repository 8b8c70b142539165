import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { bulkExport, exportFinishedSignal } from './bulk-export';
import { exportStartOptions } from './visibility';
import type { ExportInput, ExportStatus } from '../src/contracts/bulk-export';
import { readScheduledExport } from '../src/contracts/legacy-shapes';
import type { ScheduledExportInput, ScheduledRunResult, ScheduleWebhookInput } from '../src/contracts/scheduled-export';

const ledger = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

const webhook = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '10 minutes', maximumAttempts: 30 },
});

/**
 * One run of a bulkflow schedule (the action of its Temporal Schedule): read the watermark,
 * start the export with `_since` = the watermark, wait until its files are complete (not until
 * they expire: the export lives on, abandoned, through its retention), then move the watermark
 * to the export's transactionTime and publish the latest manifest. The Schedule skips a tick
 * while a run is still going.
 */
export async function scheduledExport(input: ScheduledExportInput): Promise<ScheduledRunResult> {
  let finished: ExportStatus | undefined;
  setHandler(exportFinishedSignal, (status) => {
    finished = status;
  });
  const { tenant, scheduleId } = input;
  const { workflowId, runId } = workflowInfo();
  const run = await ledger.beginScheduledRun({ tenant, scheduleId, workflowId, runId, start: input.start });
  // Schedules created by older releases hold a flat window: read it as any export input is read.
  const scheduled = readScheduledExport(input.export, tenant);
  const exportInput: ExportInput = {
    ...scheduled,
    exportId: run.exportId,
    owner: input.owner,
    window: { ...scheduled.window, tenant, since: run.since },
    request: run.since ? `${input.request}${input.request.includes('?') ? '&' : '?'}_since=${encodeURIComponent(run.since)}` : input.request,
    scheduleId,
    outputPrefix: input.outputPrefix,
    notifyParent: true,
  };
  const child = await startChild(bulkExport, {
    workflowId: run.exportId,
    args: [exportInput],
    parentClosePolicy: ParentClosePolicy.ABANDON, // the files outlive the run
    ...exportStartOptions(exportInput),
  });
  // The export ends only when its files expire; it signals when they are complete. If it ends
  // first, it failed or was cancelled.
  const ended = child.result().then(
    () => new Error('the export ended without reporting its files'),
    (err: unknown) => err,
  );
  let outcome: unknown;
  try {
    outcome = await Promise.race([condition(() => finished !== undefined).then(() => undefined), ended]);
  } catch (err) {
    // This run itself was cancelled: its export goes on alone, outside the chain.
    await CancellationScope.nonCancellable(() => ledger.endScheduledRun({ tenant, exportId: run.exportId, state: 'cancelled', reason: 'the scheduled run was cancelled' }));
    throw err;
  }
  if (outcome !== undefined || !finished) {
    const cancelled = isCancellation(outcome);
    const reason = rootCause(outcome);
    await ledger.endScheduledRun({ tenant, exportId: run.exportId, state: cancelled ? 'cancelled' : 'failed', reason });
    throw ApplicationFailure.nonRetryable(`Export ${run.exportId} of schedule ${scheduleId} ${cancelled ? 'was cancelled' : 'failed'}: ${reason}`, 'ScheduledExportFailed');
  }
  const status: ExportStatus = finished;
  const recorded = await ledger.completeScheduledRun({
    tenant,
    scheduleId,
    exportId: run.exportId,
    watermark: run.watermark,
    outputPrefix: input.outputPrefix,
    fhirBaseUrl: input.fhirBaseUrl,
    status,
  });
  if (input.webhookUrl && recorded.state === 'completed') {
    const body: ScheduleWebhookInput['body'] = { scheduleId, tenant, exportId: run.exportId, since: run.since, transactionTime: status.transactionTime!, manifest: recorded.manifest };
    await startChild(deliverWebhook, {
      workflowId: `${run.exportId}-webhook`,
      args: [{ url: input.webhookUrl, body }],
      parentClosePolicy: ParentClosePolicy.ABANDON, // retried on its own; the next run need not wait
      staticSummary: `Completion webhook of schedule ${scheduleId}, export ${run.exportId}`,
    });
  }
  return { exportId: run.exportId, since: run.since, transactionTime: status.transactionTime!, state: recorded.state };
}

/** POSTs a completed run's manifest to the schedule's webhook, retried with backoff. */
export async function deliverWebhook(input: ScheduleWebhookInput): Promise<void> {
  await webhook.postWebhook(input);
}

/** The innermost message of a failure chain (child → activity → application failure). */
export function rootCause(err: unknown): string {
  let at = err;
  while (at instanceof Error && at.cause instanceof Error) at = at.cause;
  return at instanceof Error ? at.message : String(at);
}
