import type { Pool } from 'pg';
import type { ExportLocation } from '../src/contracts/export-window';
import { asyncDirectory, errorFileKey, exportDirectory } from '../src/output/file-keys';
import { writeText, type OutputStore } from '../src/output/output-store';
import { forgetSelection } from '../src/store/recorded-selection';
import { forgetPatientList } from '../src/store/patient-lists';
import type { AsyncRequestInput } from '../src/contracts/async-request';
import type { ExportPartitionInput, ExportPlan, OperationOutcomeIssueJson, PartFile, PatientBlocksInput } from '../src/contracts/bulk-export';
import { exportPartition } from './export-partition';
import { exportPatientBlocks } from './export-patient-blocks';
import { planExport } from './plan-export';
import { planViewExport } from './plan-view-export';
import { exportViewPartition } from './export-view-partition';
import { exportSqlSubject } from './export-sql-subject';
import type { PlanViewExportInput, SqlSubjectInput, ViewExportPlan, ViewPartitionInput } from '../src/contracts/view-export';
import { DEFAULT_SQL_EXPORT_LIMITS, type EngineLimits } from '../src/sql/engine-types';
import { readPlanInput } from '../src/contracts/legacy-shapes';
import { runAsyncRequest } from './async-request';
import { cancellableQueries, heartbeating } from './liveness';
import { withPermanentFailures } from './failures';
import { scheduledRunActivities } from './scheduled-runs';
import { lakeRunActivities } from './lake-runs';
import { submissionActivities } from './bulk-submission';
import type { Submitters } from '../src/bulk-submit/submitters';

export interface ActivityDependencies {
  pool: Pool;
  output: OutputStore;
  /** The SQL engine's limits for an export's SQL subjects (SQL_* settings). */
  sqlLimits?: EngineLimits;
  /** Providers `$bulk-submit` accepts (BULK_SUBMITTERS_FILE); absent: none. */
  submitters?: Submitters;
}

/** Each activity of `activities` run while heartbeating on a timer (liveness.ts). */
function beatingAll<T extends Record<string, (input: never) => Promise<unknown>>>(activities: T): T {
  return Object.fromEntries(Object.entries(activities).map(([name, run]) => [name, (input: never) => heartbeating(() => run(input))])) as T;
}

/** Activity implementations, built from injected dependencies so tests pass real ones. */
export function createActivities(deps: ActivityDependencies) {
  /**
   * Work that reads the store: heartbeats on a timer whatever its queries do, and a cancellation
   * stops those queries at once (liveness.ts).
   */
  const live = <T>(work: (deps: ActivityDependencies) => Promise<T>) => heartbeating((signal) => cancellableQueries(deps.pool, signal, (pool) => work({ ...deps, pool })));

  return withPermanentFailures({
    ...scheduledRunActivities(deps),
    // A lake run's file work beats on a timer: a worker that dies mid-commit is noticed within the heartbeat timeout.
    ...beatingAll(lakeRunActivities(deps)),
    ...submissionActivities(deps),

    /**
     * Fixes the export's transactionTime (every write stamped at or before it has committed)
     * and cuts each requested type into partitions of about `partitionSize` resources.
     */
    async planExport(input: Parameters<typeof readPlanInput>[0]): Promise<ExportPlan> {
      return live(({ pool }) => planExport(pool, readPlanInput(input)));
    },

    async exportPartition(input: ExportPartitionInput) {
      return live((own) => exportPartition(own, input));
    },

    async exportPatientBlocks(input: PatientBlocksInput) {
      return live((own) => exportPatientBlocks(own, input));
    },

    /** `$sql-export`: fixes the snapshot and cuts the views' types into partitions. */
    async planViewExport(input: PlanViewExportInput): Promise<ViewExportPlan> {
      return live(({ pool }) => planViewExport(pool, input));
    },

    async exportViewPartition(input: ViewPartitionInput) {
      return live((own) => exportViewPartition(own, input));
    },

    /** One SQL subject of a `$sql-export`, whole: a cancel interrupts the engine and stops its reads. */
    async exportSqlSubject(input: SqlSubjectInput) {
      return heartbeating((signal) => cancellableQueries(deps.pool, signal, (pool) => exportSqlSubject({ ...deps, pool, sqlLimits: deps.sqlLimits ?? DEFAULT_SQL_EXPORT_LIMITS }, input, signal)));
    },

    /** Writes the OperationOutcomes of lenient handling as the manifest's `error` file. */
    async writeErrorFile(input: ExportLocation & { issues: OperationOutcomeIssueJson[] }): Promise<PartFile> {
      const key = errorFileKey(input);
      const text = input.issues.map((issue) => JSON.stringify({ resourceType: 'OperationOutcome', issue: [issue] }) + '\n').join('');
      await writeText(deps.output, key, text);
      return { type: 'OperationOutcome', key, count: input.issues.length, bytes: Buffer.byteLength(text) };
    },

    /** Runs a `Prefer: respond-async` request and stores its response; beats on a timer, and a cancel stops its queries. */
    async runAsyncRequest(input: AsyncRequestInput) {
      return live((own) => runAsyncRequest(own, input));
    },

    /** Removes an async request's stored request and response. Idempotent. */
    async deleteAsyncFiles(input: { tenant: string; requestId: string }): Promise<number> {
      return deps.output.deletePrefix(asyncDirectory(input.tenant, input.requestId));
    },

    /** Removes every file of an export (cancel, expiry). Idempotent. */
    async deleteExportFiles(input: ExportLocation): Promise<number> {
      await forgetSelection(deps.pool, input.exportId);
      await forgetPatientList(deps.pool, input.exportId);
      return deps.output.deletePrefix(exportDirectory(input));
    },
  });
}

export type Activities = ReturnType<typeof createActivities>;
