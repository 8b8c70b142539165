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

/*
 * A lake schedule's layout under `<tenant>/<destination>/`: one folder per table, one
 * `run=<run>` folder per run in it (Hive-style), `_latest` per table, `_runs/<run>.json` per run,
 * and `_staging/` where a run's files are written before they move into their tables.
 */

/** Where a lake run's exports write before their files move into the tables (an output prefix under the tenant). */
export const lakeStagingPrefix = (destination: string) => `${destination}/_staging`;

/** One of a run's staging folders (its exports' and its deletions'). */
export const lakeStagingFolder = (tenant: string, destination: string, folder: string) => `${tenant}/${lakeStagingPrefix(destination)}/${folder}/`;

/** A staged deletions file of one table, in the run's staging `folder`. */
export const lakeStagedDeletedKey = (tenant: string, destination: string, folder: string, subject: string, extension: string) =>
  `${lakeStagingFolder(tenant, destination, folder)}${subject}.${extension}`;

/** A table's folder of one run. */
export const lakeRunFolder = (tenant: string, destination: string, subject: string, run: string) => `${tenant}/${destination}/${subject}/run=${run}/`;

/** A table's part `n` of one run: `part-NNNNN.<ext>`. */
export const lakePartKey = (tenant: string, destination: string, subject: string, run: string, n: number, extension: string) =>
  `${lakeRunFolder(tenant, destination, subject, run)}part-${String(n).padStart(5, '0')}.${extension}`;

/** The keys whose earlier rows a reader drops before adding the run's. */
export const lakeDeletedKey = (tenant: string, destination: string, subject: string, run: string, extension: string) => `${lakeRunFolder(tenant, destination, subject, run)}deleted.${extension}`;

/** A table's pointer to its newest complete run and the full run a reader starts from. */
export const lakeLatestKey = (tenant: string, destination: string, subject: string) => `${tenant}/${destination}/${subject}/_latest`;

/** A run's manifest, written last. */
export const lakeManifestKey = (tenant: string, destination: string, run: string) => `${tenant}/${destination}/_runs/${run}.json`;

/** A key under the destination, as a run manifest lists it. */
export const lakeRelativeKey = (tenant: string, destination: string, key: string) => key.slice(`${tenant}/${destination}/`.length);

/** A `$bulk-submit` submission's directory: `<tenant>/submission-<jobId>/`. */
export const submissionDirectory = (tenant: string, jobId: string) => `${tenant}/submission-${jobId}/`;

/** The OperationOutcomes of one submitted file's problems (manifest and file by their index in the submission). */
export const submissionIssuesKey = (tenant: string, jobId: string, manifest: number, file: number) => `${submissionDirectory(tenant, jobId)}issues-${manifest}-${file}.ndjson`;
