/**
 * The `viewExport` workflow's contract (`$sql-export`): the views to run, in one window, written
 * as part files per view; what planning and each view-partition activity take and give back; and
 * what its `viewExportStatus` query answers. Imports only the other contracts.
 */
import type { ExportLevel, ExportTuning, PartFile, PlannedPartition } from './bulk-export';
import type { ExportLocation, ExportWindow, PartLimits, RequestedWindow } from './export-window';

export type ViewFormat = 'ndjson' | 'csv' | 'json' | 'parquet';

/** The failure type of a view that cannot be evaluated on the data (its details: the OperationOutcome issues). */
export const VIEW_EVALUATION_FAILURE = 'ViewEvaluationError';

/** One `subject` of the kick-off: its output name and the ViewDefinition (resolved and checked at kick-off). */
export interface ExportedView {
  name: string;
  /** The ViewDefinition resource as checked at kick-off: a stored view's later edits do not change a running export. */
  definition: Record<string, unknown>;
  /** The resource type it reads. */
  resource: string;
}

/** A SQLQuery or SQLView subject as resolved at kick-off: what it runs does not change under a running export. */
export interface ExportedSqlSubject {
  name: string;
  sql: string;
  parameters: Array<{ name: string; type: 'string' | 'integer' | 'decimal' | 'boolean' | 'date' | 'dateTime'; value: string | number | boolean }>;
  /** ViewDefinitions, each made into the table `label`. */
  views: Array<{ label: string; definition: Record<string, unknown> }>;
  /** SQLViews, in the order to make them. */
  sqlViews: Array<{ label: string; sql: string }>;
}

export interface ViewExportInput {
  exportId: string;
  level: ExportLevel;
  owner: string;
  /** The kick-off request URL. */
  request: string;
  clientTrackingId?: string;
  window: RequestedWindow;
  views: ExportedView[];
  /** SQL subjects, each run whole at the job's snapshot (absent in earlier inputs). */
  sqlSubjects?: ExportedSqlSubject[];
  format: ViewFormat;
  /** CSV: a header row in every part. */
  header: boolean;
  tuning: ExportTuning;
  /** Files under `<tenant>/<outputPrefix>/<exportId>/` (a lake schedule's staging; absent: `<tenant>/<exportId>/`). */
  outputPrefix?: string;
  /** Return the status once the files are complete, and leave them to the caller (a lake run moves them into its tables). */
  handOver?: boolean;
  /** Export at this snapshot instead of a new one (a lake run's second export, so all its tables share one). */
  transactionTime?: string;
}

export interface PlanViewExportInput {
  exportId: string;
  window: RequestedWindow;
  /** The resource types the views read. */
  types: string[];
  partitionSize: number;
  /** At most this many view partitions (a type's partitions once per view that reads it; absent in earlier inputs: MAX_PARTITIONS). */
  maxPartitions?: number;
  /** How many views read each type (weights of the cap). */
  viewsPerType?: Record<string, number>;
  /** The snapshot to plan at (absent: a new one). */
  transactionTime?: string;
}

export interface ViewExportPlan {
  transactionTime: string;
  /** Resources per type in the window. */
  totals: Record<string, number>;
  partitions: PlannedPartition[];
}

/** One partition of one view's resource type, evaluated and written as rows. */
export interface ViewPartitionInput {
  location: ExportLocation;
  window: ExportWindow;
  partition: PlannedPartition;
  limits: PartLimits;
  view: ExportedView;
  format: ViewFormat;
  header: boolean;
}

/** One SQL subject, run whole: its tables made at the snapshot, its SQL, its rows into part files. */
export interface SqlSubjectInput {
  location: ExportLocation;
  window: ExportWindow;
  limits: PartLimits;
  subject: ExportedSqlSubject;
  format: ViewFormat;
  header: boolean;
}

export interface SqlSubjectResult {
  name: string;
  rows: number;
  /** Rows of each table the SQL read. */
  tableRows: Record<string, number>;
  parts: PartFile[];
  /** Where the time went: making the tables, running the SQL, writing the rows; and the worst event-loop delay meanwhile. */
  timings: SqlSubjectTimings;
}

export interface SqlSubjectTimings {
  materialiseMs: number;
  sqlMs: number;
  writeMs: number;
  eventLoopMaxDelayMs?: number;
}

export interface ViewPartitionResult {
  view: string;
  partition: number;
  /** Resources read (each gives zero or more rows). */
  resources: number;
  /** Part files; `count` is rows. */
  parts: PartFile[];
}

export interface ViewProgress {
  /** The resource type a view reads; `Library` for a SQL subject. */
  resource: string;
  /** Resources of the view's type in the window, and read so far. */
  resources: number;
  read: number;
  rows: number;
  parts: PartFile[];
  /** A SQL subject, once done: the rows of each table it read, and where its time went. */
  sql?: { tableRows: Record<string, number>; timings: SqlSubjectTimings };
}

/** What the `viewExportStatus` query answers. */
export interface ViewExportStatus {
  exportId: string;
  phase: 'planning' | 'exporting' | 'completed';
  request: string;
  clientTrackingId?: string;
  format: ViewFormat;
  transactionTime?: string;
  /** Per view, in the kick-off's order. */
  views: Record<string, ViewProgress>;
  partitionsDone: number;
  partitionsTotal: number;
  startedAt?: string;
  completedAt?: string;
  expiresAt?: string;
}
