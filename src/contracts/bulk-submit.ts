/**
 * The `bulkSubmission` workflow's contract: a `$bulk-submit` submission (or a `$import`
 * ping-and-pull) whose manifests are fetched and whose files are loaded into the store. A leaf.
 */

/** The Identifier a provider submits as (`submitter`): system and value, as configured for the tenant. */
export interface SubmitterRef {
  system: string;
  value: string;
}

/**
 * How resources already stored are treated (the `import` option `mode`):
 * `replace` (default): each submitted resource becomes the current version (a PUT);
 * `merge`: only resources the store does not hold yet are written; stored ones are kept.
 */
export type ImportMode = 'replace' | 'merge';

/** One manifest to load: given by `$bulk-submit`, or found by a `$import` ping-and-pull. */
export interface ManifestRequest {
  /** `manifest`: GET a Bulk Data manifest at `url`; `export`: run a `$export` kick-off at `url`, poll, then load its manifest. */
  source: 'manifest' | 'export';
  url: string;
  /** The provider's FHIR base (`fhirBaseUrl`), for its references and its authorization server. */
  fhirBaseUrl?: string;
  /** A manifest of this submission whose resources this one replaces (`replacesManifestUrl`). */
  replacesManifestUrl?: string;
  /** Headers sent with every request to the provider (`fileRequestHeader`): names and values. */
  fileRequestHeaders: Array<[string, string]>;
  /** SMART metadata of the provider's authorization server: bulkflow gets its own token there (`oauthMetadataUrl`). */
  oauthMetadataUrl?: string;
  mode: ImportMode;
  /** `metadata` the provider attached: kept with the submission and shown in its status. */
  metadata: Array<[string, string]>;
}

export interface SubmissionInput {
  /** The workflow id: derived from tenant, submitter and submissionId, so every request of the submission finds it. */
  jobId: string;
  tenant: string;
  submitter: SubmitterRef;
  submissionId: string;
  /** The manifest that started the submission, if any (`submissionStatus` alone may start one). */
  first?: ManifestRequest;
  /** Closed at start (a `$bulk-submit` with `submissionStatus` and a manifest, or a `$import`). */
  closeWith?: 'completed' | 'stopped';
  /** How long the status stays available after the submission ends (ms). */
  retentionMs: number;
  heartbeatTimeoutMs: number;
  /** Files loaded at once. */
  maxParallelFiles: number;
}

/** What a provider's manifest lists (an NDJSON file of one type; `count` when the manifest gave it). */
export interface RemoteFile {
  url: string;
  type: string;
  count?: number;
}

export interface RemoteManifest {
  transactionTime?: string;
  requiresAccessToken: boolean;
  files: RemoteFile[];
}

/** A problem in a file: its 1-based line (absent for the file as a whole). */
export interface LineIssue {
  line?: number;
  severity: 'error' | 'warning' | 'information';
  diagnostics: string;
}

/** What loading one file did. */
export interface FileLoad {
  bytes: number;
  lines: number;
  /** Resources created or updated. */
  written: number;
  /** Resources the store already held with the same content (a retried file writes nothing twice). */
  unchanged: number;
  /** Resources kept as stored (`merge`). */
  kept: number;
  errors: number;
  /** The file of OperationOutcomes for this file's problems (the output store's key), when it had any. */
  issuesKey?: string;
}

export interface SubmittedFileStatus extends RemoteFile {
  state: 'pending' | 'loading' | 'done' | 'failed';
  load?: FileLoad;
  /** Why the file could not be loaded (after its retries). */
  failure?: string;
}

export interface SubmittedManifestStatus {
  url: string;
  source: ManifestRequest['source'];
  replacesManifestUrl?: string;
  mode: ImportMode;
  metadata: Array<[string, string]>;
  state: 'queued' | 'reading' | 'loading' | 'done' | 'failed' | 'replaced';
  /** The manifest that a provider's export answered with (`export` sources). */
  resolvedUrl?: string;
  transactionTime?: string;
  files: SubmittedFileStatus[];
  /** Resources of the replaced manifest that this one does not carry, deleted. */
  removed?: number;
  failure?: string;
}

export interface SubmissionStatus {
  submissionId: string;
  /** `open`: more manifests may come; `loading`: closed, manifests still loading; then one of the ends. */
  phase: 'open' | 'loading' | 'completed' | 'stopped';
  startedAt: string;
  completedAt?: string;
  expiresAt?: string;
  manifests: SubmittedManifestStatus[];
}

/** Names of the workflow's signals and query (defined in workflows/bulk-submission.ts). */
export const SUBMIT_MANIFEST_SIGNAL = 'submitManifest';
export const CLOSE_SUBMISSION_SIGNAL = 'closeSubmission';

/**
 * A provider's URL as the Temporal UI shows it (summaries, current details): without its query,
 * which may hold search values about patients (`_typeFilter=Patient?name=...`).
 */
export function urlForDisplay(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : `${url.slice(0, query)}?…`;
}
