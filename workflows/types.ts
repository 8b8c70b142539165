/** Shapes shared by the workflow, its activities and the HTTP layer (types, and one constant). */
import type { ElementsSelection } from '../src/fhir/elements';
import type { ScheduleDefinition } from '../src/schedules/schedule-definition';
import type { TypeFilters } from '../src/fhir/search/type-filter';
import type { CompartmentFilter, Cursor } from '../src/store/snapshot-scope';

export type ExportLevel = 'system' | 'patient' | 'group';

/** The progress key and partition type of patient blocks (`organizeOutputBy=Patient`). */
export const BLOCKS = 'Patient blocks';

export interface OperationOutcomeIssueJson {
  severity: 'fatal' | 'error' | 'warning' | 'information';
  code: string;
  diagnostics: string;
  expression?: string[];
}

export interface ExportInput {
  exportId: string;
  level: ExportLevel;
  tenant: string;
  owner: string;
  /** The kick-off request URL, echoed in the manifest. */
  request: string;
  /** Requested types; undefined means every type in the store (in the Patient compartment for Patient/Group). */
  types?: string[];
  /** Patient and Group exports: the compartments to read. */
  compartment?: CompartmentFilter;
  since?: string;
  until?: string;
  /** `_elements`: the root elements to keep (mandatory ones are always kept). */
  elements?: ElementsSelection;
  /** `_typeFilter`: search queries (after `?`) per type, OR-ed. */
  typeFilters?: TypeFilters;
  /** `organizeOutputBy=Patient` (Patient/Group exports): files of per-patient blocks. */
  organizeOutputBy?: 'Patient';
  /** `allowPartialManifests=true`: the manifest is paged and pages are served while the export runs. */
  allowPartialManifests?: boolean;
  /** `includeAssociatedData`: Provenance to add (Patient/Group exports add relevant Provenance by default). */
  associatedProvenance?: 'relevant' | 'latest';
  /** Problems ignored under `Prefer: handling=lenient`, reported in the manifest `error` file. */
  lenientIssues: OperationOutcomeIssueJson[];
  /** The bulkflow schedule that started this export, if one did. */
  scheduleId?: string;
  /** Files go under `<tenant>/<outputPrefix>/<exportId>/` (scheduled runs), else `<tenant>/<exportId>/`. */
  outputPrefix?: string;
  /** Signal the parent workflow (a scheduled run) with the status once the files are complete. */
  notifyParent?: boolean;
  tuning: ExportTuning;
}

export interface ExportTuning {
  partitionSize: number;
  maxParallelPartitions: number;
  maxPartResources: number;
  maxPartBytes: number;
  /** How long files stay available after completion, in ms. */
  retentionMs: number;
  heartbeatTimeoutMs: number;
  /** Files per manifest page when the client allows partial manifests. */
  manifestPageFiles: number;
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

export interface ExportPartitionInput extends PlannedPartition {
  exportId: string;
  tenant: string;
  outputPrefix?: string;
  compartment?: CompartmentFilter;
  transactionTime: string;
  since?: string;
  until?: string;
  elements?: ElementsSelection;
  /** This type's `_typeFilter` queries. */
  filters?: string[];
  maxPartResources: number;
  maxPartBytes: number;
}

export interface PartFile {
  type: string;
  key: string;
  count: number;
  bytes: number;
  /** Patient blocks: the last block goes on in the next part of the same partition. */
  continues?: boolean;
}

/** One partition of patient blocks (`organizeOutputBy=Patient`). */
export interface PatientBlocksInput {
  exportId: string;
  tenant: string;
  outputPrefix?: string;
  partition: number;
  compartment: CompartmentFilter;
  types: string[];
  transactionTime: string;
  since?: string;
  until?: string;
  afterPatient?: string;
  upToPatient?: string;
  elements?: ElementsSelection;
  typeFilters?: TypeFilters;
  maxPartResources: number;
  maxPartBytes: number;
}

export interface ExportPartitionResult {
  type: string;
  partition: number;
  deletions?: boolean;
  parts: PartFile[];
}

export type ExportPhase = 'planning' | 'exporting' | 'completed';

export interface TypeProgress {
  total: number;
  exported: number;
}

/** What the `status` query answers. */
export interface ExportStatus {
  exportId: string;
  phase: ExportPhase;
  request: string;
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

/** A request made with `Prefer: respond-async`, run as an `asyncRequest` workflow. */
export interface AsyncRequestInput {
  requestId: string;
  tenant: string;
  kind: 'search' | 'batch';
  /** Absolute FHIR base, for links, fullUrls and Locations in the response. */
  fhirBaseUrl: string;
  /** A type search. */
  search?: { resourceType: string; querystring: string; lenient: boolean };
  /** A batch: the key of the request Bundle in the output store (kept out of workflow history). */
  requestKey?: string;
  retentionMs: number;
}

/** The response an async request produced, stored in the output store. */
export interface AsyncResponse {
  httpStatus: number;
  responseKey: string;
}

export interface AsyncRequestStatus extends Partial<AsyncResponse> {
  requestId: string;
  kind: AsyncRequestInput['kind'];
  phase: 'running' | 'completed';
  completedAt?: string;
  expiresAt?: string;
}

/** What every run of a bulkflow schedule starts from (the Temporal Schedule's action argument). */
export interface ScheduledExportInput {
  scheduleId: string;
  tenant: string;
  owner: string;
  /** The kick-off request the runs stand for, as an absolute URL without `_since` (each run adds its own). */
  request: string;
  /** The export each run makes, but for its id, `_since` and where it belongs. */
  export: Omit<ExportInput, 'exportId' | 'since' | 'request' | 'tenant' | 'owner' | 'scheduleId' | 'outputPrefix' | 'notifyParent'>;
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
