/**
 * The `scheduledExport` and `deliverWebhook` workflows' contract, and the schedule definition
 * the admin API speaks. Imports only the other contracts.
 */
import type { ExportInput, ExportLevel } from './bulk-export';

/** A bulkflow schedule as the admin API describes it. */
export interface ScheduleDefinition {
  id: string;
  /** An interval (`30s`, `15m`, `1h`, `1d`) or a cron expression with an optional time zone. */
  every?: string;
  cron?: string;
  timeZone?: string;
  level: ExportLevel;
  group?: string;
  /** Kick-off parameters, as in a GET query (a value or a list of values each). */
  parameters: Record<string, string[]>;
  /** The first run's `_since` (absent: the first run exports everything). */
  start?: string;
  outputPrefix: string;
  /** How long each run's files are kept after it completes. */
  retention?: string;
  webhook?: string;
  /** A lake schedule: the subjects of a `$sql-export` kick-off (a Parameters resource) whose tables its runs keep current. */
  sqlExport?: Record<string, unknown>;
  /** A lake schedule's prefix in the output store (under the tenant). */
  destination?: string;
  /** A lake schedule's views: `incremental` (the default) or `full` every run. */
  mode?: 'incremental' | 'full';
  /** A lake schedule: every Nth run rewrites the incremental tables in full. */
  fullEvery?: number;
}

/** What every run of a bulkflow schedule starts from (the Temporal Schedule's action argument). */
export interface ScheduledExportInput {
  scheduleId: string;
  tenant: string;
  owner: string;
  /** The kick-off request the runs stand for, as an absolute URL without `_since` (each run adds its own). */
  request: string;
  /** The export each run makes, but for its id, `_since` (in the window) and where it belongs. */
  export: Omit<ExportInput, 'exportId' | 'request' | 'owner' | 'scheduleId' | 'outputPrefix' | 'notifyParent'>;
  /** The first run's `_since` (absent: the first run exports everything). */
  start?: string;
  /** Runs write under `<tenant>/<outputPrefix>/<exportId>/`; `<tenant>/<outputPrefix>/latest.json` names the newest. */
  outputPrefix: string;
  /** The API's absolute FHIR base for this tenant: manifest file URLs. */
  fhirBaseUrl: string;
  /** POSTed the manifest of every completed run (retried, never holding up the chain). */
  webhookUrl?: string;
  /** The schedule as the admin API describes it (read back from the Schedule's action). */
  definition: ScheduleDefinition;
}

export interface ScheduledRunResult {
  exportId: string;
  since?: string;
  transactionTime: string;
  /** `superseded`: another run moved the watermark first; this run's files stay, the chain skips them. */
  state: 'completed' | 'superseded';
}

/** The body POSTed to a schedule's webhook. */
export interface ScheduleWebhookInput {
  url: string;
  body: { scheduleId: string; tenant: string; exportId: string; since?: string; transactionTime: string; manifest: unknown };
}
