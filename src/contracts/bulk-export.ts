/**
 * The `bulkExport` workflow's contract: what the kick-off starts it with, what planning and each
 * partition activity take and give back, and what its `status` query answers. Imports only the
 * other contracts.
 */
import type { Cursor, ExportLocation, ExportWindow, PartLimits, RequestedWindow } from './export-window';

export type ExportLevel = 'system' | 'patient' | 'group';

/** The progress key and partition type of patient blocks (`organizeOutputBy=Patient`). */
export const BLOCKS = 'Patient blocks';

export interface OperationOutcomeIssueJson {
  severity: 'fatal' | 'error' | 'warning' | 'information';
  code: string;
  diagnostics: string;
  expression?: string[];
}

/** `_elements`: root elements to keep, for every type and per type (mandatory ones are always kept). */
export interface ElementsSelection {
  all: string[];
  byType: Record<string, string[]>;
}

/** `_typeFilter`: search queries (after `?`) per type, OR-ed. */
export type TypeFilters = Record<string, string[]>;

/** `includeAssociatedData`: Provenance to add (Patient/Group exports add relevant Provenance by default). */
export type ProvenanceSelection = 'relevant' | 'latest';

export interface ExportInput {
  exportId: string;
  level: ExportLevel;
  owner: string;
  /** The kick-off request URL, echoed in the manifest. */
  request: string;
  /** What to read: tenant, `_since`, `_until`, and for Patient/Group exports the compartments. */
  window: RequestedWindow;
  /** Requested types; undefined means every type in the store (in the Patient compartment for Patient/Group). */
  types?: string[];
  elements?: ElementsSelection;
  typeFilters?: TypeFilters;
  /** `organizeOutputBy=Patient` (Patient/Group exports): files of per-patient blocks. */
  organizeOutputBy?: 'Patient';
  /** `allowPartialManifests=true`: the manifest is paged and pages are served while the export runs. */
  allowPartialManifests?: boolean;
  associatedProvenance?: ProvenanceSelection;
  /** Problems ignored under `Prefer: handling=lenient`, reported in the manifest `error` file. */
  lenientIssues: OperationOutcomeIssueJson[];
  /** `Prefer: handling=lenient`: a resource that cannot be exported is left out and reported, not fatal. */
  lenient?: boolean;
  /** Kicked off as `$export-v4`: the status URL serves the STU4 manifest (absent: the v2 manifest). */
  manifestShape?: ManifestShape;
  /** The bulkflow schedule that started this export, if one did. */
  scheduleId?: string;
  /** Files go under `<tenant>/<outputPrefix>/<exportId>/` (scheduled runs), else `<tenant>/<exportId>/`. */
  outputPrefix?: string;
  /** Signal the parent workflow (a scheduled run) with the status once the files are complete. */
  notifyParent?: boolean;
  tuning: ExportTuning;
}

export interface ExportTuning extends PartLimits {
  partitionSize: number;
  maxParallelPartitions: number;
  /** How long files stay available after completion, in ms. */
  retentionMs: number;
  heartbeatTimeoutMs: number;
  /** Files per manifest page when the client allows partial manifests. */
  manifestPageFiles: number;
}

/** Where an export's files go. */
export const locationOf = (input: ExportInput): ExportLocation => ({ tenant: input.window.tenant, exportId: input.exportId, outputPrefix: input.outputPrefix });

/** The part limits out of the tuning (activities need nothing else of it). */
export const partLimits = (tuning: PartLimits): PartLimits => ({ maxPartResources: tuning.maxPartResources, maxPartBytes: tuning.maxPartBytes });

/** Planning: fix the snapshot, choose the types, record what is added, cut partitions. */
export interface PlanExportInput {
  exportId: string;
  window: RequestedWindow;
  types?: string[];
  typeFilters?: TypeFilters;
  associatedProvenance?: ProvenanceSelection;
  organizeOutputBy?: 'Patient';
  partitionSize: number;
  /** At most this many partitions: wider ones past it (history-budget.ts; absent in earlier inputs: MAX_PARTITIONS). */
  maxPartitions?: number;
}

export interface PlannedPartition {
  type: string;
  partition: number;
  /** A partition of the type's deletions since `_since` (manifest `deleted`), not of its resources. */
  deletions?: boolean;
  /** Only the ids of this type recorded for the export at planning (referenced resources, associated Provenance). */
  recorded?: boolean;
  /** `organizeOutputBy=Patient`: this partition is the blocks of the patients in (afterPatient, upToPatient]. */
  blocks?: { afterPatient?: string; upToPatient?: string };
  after?: Cursor;
  upTo?: Cursor;
}

export interface ExportPlan {
  transactionTime: string;
  /** The types patient blocks hold (`organizeOutputBy=Patient`). */
  blockTypes?: string[];
  totals: Record<string, number>;
  /** Deleted resources per type (only with `_since`). */
  deletedTotals: Record<string, number>;
  partitions: PlannedPartition[];
}

/** One partition of one type (or of its deletions). */
export interface ExportPartitionInput {
  location: ExportLocation;
  window: ExportWindow;
  partition: PlannedPartition;
  limits: PartLimits;
  elements?: ElementsSelection;
  /** This type's `_typeFilter` queries. */
  filters?: string[];
  /** Leave out (and report) resources that cannot be exported, instead of failing. */
  lenient?: boolean;
}

/** One partition of patient blocks (`organizeOutputBy=Patient`): its window has a compartment, its partition `blocks`. */
export interface PatientBlocksInput {
  location: ExportLocation;
  window: ExportWindow;
  partition: PlannedPartition;
  limits: PartLimits;
  types: string[];
  elements?: ElementsSelection;
  typeFilters?: TypeFilters;
}

export interface PartFile {
  type: string;
  key: string;
  count: number;
  bytes: number;
  /** Patient blocks: the last block goes on in the next part of the same partition. */
  continues?: boolean;
}

export interface ExportPartitionResult {
  type: string;
  partition: number;
  deletions?: boolean;
  parts: PartFile[];
  /** Resources left out under lenient handling, for the manifest's `error` file. */
  issues?: OperationOutcomeIssueJson[];
}

export type ExportPhase = 'planning' | 'exporting' | 'completed';

export interface TypeProgress {
  total: number;
  exported: number;
}

/** The manifest a client gets: `v2` (IG v2.0.0, with STU3's additions when asked for) or `stu4` (the 4.0.0 ballot). */
export type ManifestShape = 'v2' | 'stu4';

/** What the `status` query answers. */
export interface ExportStatus {
  exportId: string;
  phase: ExportPhase;
  request: string;
  /** Absent for v2 (and for exports started before STU4 was served). */
  manifestShape?: ManifestShape;
  transactionTime?: string;
  /** `organizeOutputBy`: output files hold blocks per resource of this type. */
  organizedBy?: 'Patient';
  types: Record<string, TypeProgress>;
  /** Resources deleted since `_since`, per type. */
  deletedTypes: Record<string, TypeProgress>;
  partitionsDone: number;
  partitionsTotal: number;
  /**
   * Output files: when completed, in type, partition, part order; with partial manifests, in the
   * order they were finished (so far, while running), which keeps every page the same.
   */
  output: PartFile[];
  /** Files per manifest page, when the client allowed partial manifests. */
  manifestPageFiles?: number;
  /** Bundle NDJSON files of the resources deleted since `_since` (set when completed). */
  deleted: PartFile[];
  /** OperationOutcome NDJSON files (lenient-handling issues). */
  error: PartFile[];
  /** When the workflow started (for Retry-After estimates). */
  startedAt?: string;
  completedAt?: string;
  expiresAt?: string;
}
