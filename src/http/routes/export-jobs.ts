/**
 * What the `$export` routes (kick-off, status, files) and `$sql-export` share: their
 * dependencies, and a job's state as its owner may see it.
 */
import type { Client } from '@temporalio/client';
import type { Context } from 'koa';
import type { ExportSettings, ResultPattern } from '../../config';
import type { OutputStore } from '../../output/output-store';
import type { ResourceStore } from '../../store/resource-store';
import type { TemporalGateway } from '../../temporal/gateway';
import { statusQuery } from '../../../workflows/bulk-export';
import type { AppState } from '../app-state';
import { jobState } from '../job-state';
import { requireJobAccess } from '../authorize';

export interface BulkExportDependencies {
  client: Client;
  taskQueue: string;
  output: OutputStore;
  exportSettings: ExportSettings;
  /** Retry-After on in-progress answers: at least this... */
  retryAfterSeconds: number;
  /** ...at most this, growing with the export's expected remaining time (default: retryAfterSeconds). */
  retryAfterMaxSeconds?: number;
  /** `manifest` (the IG: 200 with the manifest on the status URL, default) or `see-other` (303 to a result URL). */
  resultPattern?: ResultPattern;
  /** Path of the FHIR base (e.g. /fhir), to echo the kick-off request. */
  fhirBasePath: string;
  /** Set (with a GCS output store): manifests list signed URLs valid this long, and `requiresAccessToken: false`. */
  signedUrlTtlSeconds?: number;
  /** Unfinished exports one tenant may have at once (unset: no limit). */
  maxRunningExports?: number;
  /** A status poll may come this much sooner than the Retry-After it was given (default 1 s). */
  pollToleranceMs?: number;
  /** How long one Temporal call may take before the request answers 503 (default 5 s). */
  temporalTimeoutMs?: number;
  /** A `Prefer: respond-async` search or batch that finishes within this long is answered synchronously (ms, default 1000). */
  asyncSyncWaitMs?: number;
  /** Checks Group and `patient` references at kick-off. */
  store?: ResourceStore;
}

/** What the routes use: the app's dependencies, with Temporal behind the gateway. */
export type BulkExportRouteDependencies = Omit<BulkExportDependencies, 'client' | 'temporalTimeoutMs'> & { temporal: TemporalGateway };

/** A running export's status (undefined when no worker answers), or a failure, as its owner sees it; gone or not theirs: 404. */
export async function exportState(deps: BulkExportRouteDependencies, ctx: Context & { state: AppState }, id: string) {
  const state = await jobState(deps.temporal, id, 'bulkExport', statusQuery);
  requireJobAccess(ctx, state);
  return state;
}
