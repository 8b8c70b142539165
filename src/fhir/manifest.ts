import type { ExportStatus, PartFile } from '../contracts/bulk-export';
import { downloadPath } from '../output/file-keys';

export interface ManifestItem {
  /** Absent for files of blocks (`organizeOutputBy`). */
  type?: string;
  url: string;
  count: number;
  /** Blocks: the last block of this file goes on in that file. */
  continuesInFile?: string;
  /** Bytes (STU4 manifests only). */
  fileSize?: number;
}

export interface BulkManifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  outputOrganizedBy?: string;
  output: ManifestItem[];
  /** Files of transaction Bundles with DELETE entries, for resources deleted since `_since`. */
  deleted?: ManifestItem[];
  error: ManifestItem[];
  /** Partial manifests: the next page. */
  link?: Array<{ relation: 'next'; url: string }>;
}

/** The STU4 ballot's manifest (the BulkDataManifest logical model): `error` is `outcome`, `request` is gone, the model is named. */
export interface Stu4Manifest extends Omit<BulkManifest, 'error' | 'request'> {
  manifestType: typeof BULK_DATA_MANIFEST;
  outputFormat: 'application/fhir+ndjson';
  outcome: ManifestItem[];
}

export const BULK_DATA_MANIFEST = 'http://hl7.org/fhir/uv/bulkdata/StructureDefinition/BulkDataManifest';

/** A v2 manifest (built with file sizes) in the STU4 shape. bulkflow writes no manifest extensions, so none change form. */
export function asStu4Manifest(manifest: BulkManifest): Stu4Manifest {
  const { error, deleted, request: _request, ...rest } = manifest;
  // The model's `deleted` and `outcome` items have no `type`: their files' types are fixed (Bundle, OperationOutcome).
  const untyped = (items: ManifestItem[]) => items.map(({ type: _type, ...item }) => item);
  return { manifestType: BULK_DATA_MANIFEST, ...rest, outputFormat: 'application/fhir+ndjson', ...(deleted ? { deleted: untyped(deleted) } : {}), outcome: untyped(error) };
}

/** The API's download URL of a file key (`<tenant>/[<prefix>/]<export>/<file>`): `<base>/bulkfiles/<export>/<file>`. */
export const downloadUrl = (fhirBaseUrl: string) => (key: string) => `${fhirBaseUrl}/bulkfiles/${downloadPath(key)}`;

/**
 * The completion manifest of the Bulk Data IG; `fileUrl` turns a file key into its absolute URL.
 * `outputRange` limits `output` to a slice of the files (a page), `withRest` adds `deleted` and
 * `error` (the last page).
 */
export function buildManifest(
  status: ExportStatus,
  fileUrl: (key: string) => string,
  options: { outputRange?: [number, number]; withRest?: boolean } = {},
): BulkManifest {
  const sized = status.manifestShape === 'stu4';
  const size = (file: PartFile) => (sized ? { fileSize: file.bytes } : {});
  const item = (file: PartFile): ManifestItem => ({ type: file.type, url: fileUrl(file.key), count: file.count, ...size(file) });
  const [start, end] = options.outputRange ?? [0, status.output.length];
  const blockItem = (file: PartFile, i: number): ManifestItem => {
    const next = status.output[start + i + 1];
    return { url: fileUrl(file.key), count: file.count, ...(file.continues && next ? { continuesInFile: fileUrl(next.key) } : {}), ...size(file) };
  };
  const output = status.output.slice(start, end);
  const withRest = options.withRest ?? true;
  return {
    transactionTime: status.transactionTime!,
    request: status.request,
    requiresAccessToken: true, // the route turns it off when it lists signed URLs
    ...(status.organizedBy ? { outputOrganizedBy: status.organizedBy } : {}),
    output: status.organizedBy ? output.map(blockItem) : output.map(item),
    ...(withRest && status.deleted?.length ? { deleted: status.deleted.map(item) } : {}),
    error: withRest ? status.error.map(item) : [],
  };
}

/**
 * Page `page` (from 1) of a partial (paged) manifest. A page is served once it can no longer
 * change: a full page (with a `next` link) as soon as its files are finished, the last page
 * (the remaining files, `deleted` and `error`) once the export is complete. Returns 'not-yet'
 * while the page is still filling, 'no-such-page' past the last page.
 */
export function manifestPage(
  status: ExportStatus,
  page: number,
  fileUrl: (key: string) => string,
  pageUrl: (page: number) => string,
): { manifest: BulkManifest; last: boolean } | 'not-yet' | 'no-such-page' {
  const size = status.manifestPageFiles!;
  const files = status.output.length;
  const range: [number, number] = [(page - 1) * size, page * size];
  if (files >= page * size) {
    return { manifest: { ...buildManifest(status, fileUrl, { outputRange: range, withRest: false }), link: [{ relation: 'next', url: pageUrl(page + 1) }] }, last: false };
  }
  if (status.phase !== 'completed') return 'not-yet';
  if (page !== Math.floor(files / size) + 1) return 'no-such-page';
  return { manifest: buildManifest(status, fileUrl, { outputRange: range }), last: true };
}

/** Free text for `X-Progress` (under 100 characters). */
export function progressText(status: ExportStatus): string {
  if (status.phase === 'planning') return 'planning';
  const totals = Object.values(status.types);
  const total = totals.reduce((n, t) => n + t.total, 0);
  const exported = totals.reduce((n, t) => n + t.exported, 0);
  const percent = total === 0 ? 100 : Math.floor((exported / total) * 100);
  return `${percent}% (${exported} of ${total} resources, ${status.partitionsDone} of ${status.partitionsTotal} partitions)`;
}

/**
 * Retry-After for a running export: about a quarter of its expected remaining time (from its
 * progress so far), within [min, max]; `min` while planning or before any progress.
 */
export function retryAfterSeconds(status: ExportStatus, min: number, max: number, now = Date.now()): number {
  const totals = Object.values(status.types);
  const total = totals.reduce((n, t) => n + t.total, 0);
  const exported = totals.reduce((n, t) => n + t.exported, 0);
  if (status.phase !== 'exporting' || !status.startedAt || total === 0 || exported === 0) return min;
  const elapsedSeconds = (now - Date.parse(status.startedAt)) / 1000;
  const remainingSeconds = (elapsedSeconds * (total - exported)) / exported;
  return Math.min(max, Math.max(min, Math.ceil(remainingSeconds / 4)));
}
