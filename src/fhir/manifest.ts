import type { ExportStatus, PartFile } from '../../workflows/types';

export interface ManifestItem {
  /** Absent for files of blocks (`organizeOutputBy`). */
  type?: string;
  url: string;
  count: number;
  /** Blocks: the last block of this file goes on in that file. */
  continuesInFile?: string;
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
}

/** The completion manifest of the Bulk Data IG; `fileUrl` turns a file key into its absolute URL. */
export function buildManifest(status: ExportStatus, fileUrl: (key: string) => string, requiresAccessToken = true): BulkManifest {
  const item = (file: PartFile): ManifestItem => ({ type: file.type, url: fileUrl(file.key), count: file.count });
  return {
    transactionTime: status.transactionTime!,
    request: status.request,
    requiresAccessToken,
    ...(status.organizedBy ? { outputOrganizedBy: status.organizedBy } : {}),
    output: status.organizedBy
      ? status.output.map((file, i) => ({
          url: fileUrl(file.key),
          count: file.count,
          ...(file.continues && status.output[i + 1] ? { continuesInFile: fileUrl(status.output[i + 1].key) } : {}),
        }))
      : status.output.map(item),
    ...(status.deleted?.length ? { deleted: status.deleted.map(item) } : {}),
    error: status.error.map(item),
  };
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
