/**
 * Where every file bulkflow writes lives, in one place. Keys are `<tenant>/...`: an export's
 * files under `<tenant>/[<outputPrefix>/]<exportId>/` (a scheduled run under its schedule's
 * prefix), an async request's under `<tenant>/async-<id>/`. Part names are deterministic, so a
 * retried partition overwrites rather than duplicates. Pure.
 */

import type { ExportLocation } from '../contracts/export-window';

/** An export's directory: `<tenant>/[<outputPrefix>/]<exportId>/`. */
export const exportDirectory = (at: ExportLocation) => `${at.tenant}/${at.outputPrefix ? `${at.outputPrefix}/` : ''}${at.exportId}/`;

/** One part of one partition: `<Type>[-deleted]-<partition>-<part>.ndjson` (patient blocks: type `patient-blocks`). */
export const partKey = (at: ExportLocation, type: string, partition: number, part: number, deletions = false) =>
  `${exportDirectory(at)}${type}${deletions ? '-deleted' : ''}-${String(partition).padStart(4, '0')}-${String(part).padStart(4, '0')}.ndjson`;

/** The extension of a view export's files per format. */
export const VIEW_FILE_EXTENSIONS = { ndjson: 'ndjson', csv: 'csv', json: 'json', parquet: 'parquet' } as const;

/** One part of one view's partition (`$sql-export`): `<view>-<partition>-<part>.<ndjson|csv|json>`. */
export const viewPartKey = (at: ExportLocation, view: string, partition: number, part: number, format: keyof typeof VIEW_FILE_EXTENSIONS) =>
  `${exportDirectory(at)}${view}-${String(partition).padStart(4, '0')}-${String(part).padStart(4, '0')}.${VIEW_FILE_EXTENSIONS[format]}`;

/** The manifest's `error` file (lenient handling's OperationOutcomes). */
export const errorFileKey = (at: ExportLocation) => `${exportDirectory(at)}OperationOutcome-errors.ndjson`;

/** A file of an export as the download URL names it (`<export>/<file>`), back to its key. */
export const exportFileKey = (at: ExportLocation, fileName: string) => `${exportDirectory(at)}${fileName}`;

/** The two path segments a download URL carries: `<exportId>/<file>`. */
export const downloadPath = (key: string) => key.split('/').slice(-2).join('/');

/** `<tenant>/<outputPrefix>/latest.json`: names a schedule's newest completed run. */
export const latestPointerKey = (tenant: string, outputPrefix: string) => `${tenant}/${outputPrefix}/latest.json`;

/** An async request's directory: `<tenant>/async-<id>/`. */
export const asyncDirectory = (tenant: string, requestId: string) => `${tenant}/async-${requestId}/`;

/** The stored request of an async batch. */
export const asyncRequestKey = (tenant: string, requestId: string) => `${asyncDirectory(tenant, requestId)}request.json`;

/**
 * The stored response of an async request, named with its HTTP status (`response-<status>.json`)
 * so a retried activity finds both in one listing.
 */
export const asyncResponseKey = (tenant: string, requestId: string, httpStatus: number) => `${asyncDirectory(tenant, requestId)}response-${httpStatus}.json`;

/** The response key among `keys` and its status, if a response was stored. */
export function storedAsyncResponse(keys: string[]): { responseKey: string; httpStatus: number } | undefined {
  for (const key of keys) {
    const match = /\/response-(\d{3})\.json$/.exec(key);
    if (match) return { responseKey: key, httpStatus: Number(match[1]) };
  }
  return undefined;
}
