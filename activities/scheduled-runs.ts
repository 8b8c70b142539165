/** The ledger side of a scheduled run: its watermark, its record, the latest pointer, the webhook. */
import type { Pool } from 'pg';
import { buildManifest, downloadUrl, type BulkManifest } from '../src/fhir/manifest';
import { latestPointerKey } from '../src/output/file-keys';
import { writeText, type OutputStore } from '../src/output/output-store';
import { ScheduleLedger, type RunStart } from '../src/store/schedule-ledger';
import type { ExportStatus } from '../src/contracts/bulk-export';
import type { ScheduleWebhookInput } from '../src/contracts/scheduled-export';

export function scheduledRunActivities(deps: { pool: Pool; output: OutputStore }) {
  const ledger = new ScheduleLedger(deps.pool);
  return {
    /** The run's export id and `_since` (the watermark, or the schedule's start); idempotent per run. */
    async beginScheduledRun(input: { tenant: string; scheduleId: string; workflowId: string; runId: string; start?: string }): Promise<RunStart> {
      return ledger.beginRun(input);
    },

    /**
     * Records the completed export: the watermark moves to its transactionTime (only from the
     * value the run started from), then `latest.json` under the schedule's prefix names it.
     */
    async completeScheduledRun(input: {
      tenant: string;
      scheduleId: string;
      exportId: string;
      watermark?: string;
      outputPrefix: string;
      fhirBaseUrl: string;
      status: ExportStatus;
    }): Promise<{ state: 'completed' | 'superseded'; manifest: BulkManifest }> {
      const manifest = buildManifest(input.status, downloadUrl(input.fhirBaseUrl));
      const state = await ledger.completeRun({ ...input, transactionTime: input.status.transactionTime!, manifest });
      if (state === 'completed') {
        const pointer = { scheduleId: input.scheduleId, exportId: input.exportId, transactionTime: manifest.transactionTime, status: `${input.fhirBaseUrl}/bulkstatus/${input.exportId}`, manifest };
        await writeText(deps.output, latestPointerKey(input.tenant, input.outputPrefix), JSON.stringify(pointer, null, 2));
      }
      return { state, manifest };
    },

    /** Records a run whose export failed or was cancelled; the watermark stays where it was. */
    async endScheduledRun(input: { tenant: string; exportId: string; state: 'failed' | 'cancelled'; reason: string }): Promise<void> {
      await ledger.endRun(input);
    },

    /** POSTs the run's manifest; anything but a 2xx throws, so Temporal retries it. */
    async postWebhook(input: ScheduleWebhookInput): Promise<void> {
      const response = await fetch(input.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(input.body),
        signal: AbortSignal.timeout(20_000),
      });
      await response.body?.cancel();
      if (!response.ok) throw new Error(`the webhook answered ${response.status}`);
    },
  };
}
