/**
 * Streams the resources of a snapshot range straight out of PostgreSQL with COPY, without
 * decoding bodies: each row arrives as `body \n` (deletions: `body \x02 last_updated \x02 id \n`). In CSV format with
 * \x01 as quote and \x02 as delimiter nothing is quoted or escaped, because stored bodies are
 * JSON text (no raw control characters) and ids and timestamps hold none either, so `body`
 * is the NDJSON line exactly as stored.
 */
import type { Pool } from 'pg';
import { parseStoredBody } from './stored-body';
import { to as copyTo } from 'pg-copy-streams';
import { snapshotFrom, snapshotKey, snapshotWhere, withSelectedPatients, type SnapshotScope } from './snapshot-scope';
import type { Cursor } from '../contracts/export-window';

export interface StreamedRow {
  /** The resource JSON, undecoded (a view into the received chunk); empty for a plain deletion. */
  body: Buffer;
  /** Deletions only: a tombstone's body says nothing, so its position comes along. */
  cursor?: Cursor;
}

/**
 * Where a row stands in (last_updated, id) order. A resource's body carries its id and
 * meta.lastUpdated, which the store sets to the row's last_updated (both from the write's
 * millisecond stamp), so live rows are streamed as bodies alone: formatting last_updated as
 * text for every row doubled PostgreSQL's time of an export query. Parsed only where a cursor
 * is needed (the end of a part).
 */
export function rowCursor(row: StreamedRow): Cursor {
  return row.cursor ?? resourceCursor(JSON.parse(row.body.toString('utf8')) as Record<string, unknown>);
}

/** Where a live resource read from the store stands in (last_updated, id) order (see rowCursor). */
export function resourceCursor(resource: Record<string, unknown>): Cursor {
  return { lastUpdated: (resource.meta as { lastUpdated: string }).lastUpdated, id: resource.id as string };
}

const NEWLINE = 0x0a;
/** CSV with \x02 between fields and \x01 as the quote: nothing in stored JSON needs quoting. */
export const COPY_FORMAT = `(FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')`;
const SEPARATOR = 0x02;

/** The body of the version a tombstone ended (so a deletion can be checked against `_typeFilter`). */
const CURSOR_COLUMNS = ', resource_versions.last_updated::text AS cursor_time, resource_versions.id';
const ENDED_VERSION_BODY_SQL = `(SELECT p.body FROM resource_versions p
   WHERE p.tenant = resource_versions.tenant AND p.resource_type = resource_versions.resource_type
     AND p.id = resource_versions.id AND p.version_id = resource_versions.version_id - 1)`;

function copySql(scope: SnapshotScope, range: { after?: Cursor; upTo?: Cursor }, endedBodies: boolean, withCursors = false): string {
  // A tombstone has no body (NULL reads back empty); the id in the cursor is what a deletion needs.
  const columns = !scope.deletions
    ? `resource_versions.body${withCursors ? CURSOR_COLUMNS : ''}`
    : `${endedBodies ? ENDED_VERSION_BODY_SQL : 'NULL'}${CURSOR_COLUMNS}`;
  const key = snapshotKey(scope);
  return `COPY (SELECT ${columns} FROM ${snapshotFrom(scope)}
     WHERE ${snapshotWhere(scope, range)} ORDER BY ${key.lastUpdated}, ${key.id}) TO STDOUT ${COPY_FORMAT}`;
}

/**
 * Yields batches of rows in (last_updated, id) order, one batch per received chunk. Memory
 * holds one chunk; the query's connection is released when the iteration ends or is abandoned.
 * For deletions the body is empty, or with `endedBodies` the body of the version the deletion
 * ended (empty if there is none), and the row carries its cursor. With `withCursors` live rows
 * carry theirs too (a reader that may meet a body it cannot parse still knows where it stands).
 */
export async function* streamSnapshot(
  pool: Pool,
  scope: SnapshotScope,
  range: { after?: Cursor; upTo?: Cursor },
  options: { endedBodies?: boolean; withCursors?: boolean } = {},
): AsyncGenerator<StreamedRow[]> {
  const sql = copySql(await withSelectedPatients(pool, scope), range, options.endedBodies ?? false, options.withCursors);
  if (!scope.deletions && !options.withCursors) {
    yield* streamCopyRows(pool, sql, 0);
    return;
  }
  for await (const rows of streamCopyRows(pool, sql, 2)) {
    yield rows.map(({ body, fields }) => ({ body, cursor: { lastUpdated: fields[0], id: fields[1] } }));
  }
}

/** The row in chunk[start, end) (end at its newline): the body, then `fieldCount` fields split from the end. */
function splitRow(chunk: Buffer, end: number, start: number, fieldCount: number): CopiedRow {
  const fields: string[] = new Array(fieldCount);
  let fieldEnd = end;
  for (let f = fieldCount - 1; f >= 0; f--) {
    const at = chunk.lastIndexOf(SEPARATOR, fieldEnd - 1);
    fields[f] = chunk.toString('latin1', at + 1, fieldEnd);
    fieldEnd = at;
  }
  return { body: chunk.subarray(start, fieldEnd), fields };
}

/** A row of `COPY (SELECT body, field, ...)`: the body undecoded, the trailing fields as text. */
export interface CopiedRow {
  body: Buffer;
  fields: string[];
}

/**
 * Streams a `COPY (SELECT body, <fieldCount> more columns) TO STDOUT (FORMAT csv, DELIMITER
 * E'\x02', QUOTE E'\x01')` in batches, one per received chunk. The trailing fields (ids,
 * timestamps) hold no separators, so each row is split from its end.
 */
export async function* streamCopyRows(pool: Pool, sql: string, fieldCount: number): AsyncGenerator<CopiedRow[]> {
  for await (const pieces of streamCopyLines(pool, sql)) {
    const rows: CopiedRow[] = [];
    for (const piece of pieces) {
      let start = 0;
      for (let end = piece.indexOf(NEWLINE, start); end !== -1; end = piece.indexOf(NEWLINE, start)) {
        rows.push(splitRow(piece, end, start, fieldCount));
        start = end + 1;
      }
    }
    if (rows.length > 0) yield rows;
  }
}

/**
 * The live resources of a range as NDJSON, neither decoded nor split into rows: each batch
 * holds buffers of whole lines (`body\n`), which is exactly what COPY sends for the bodies
 * alone. For exports that pass bodies through untouched.
 */
export async function* streamSnapshotLines(pool: Pool, scope: SnapshotScope, range: { after?: Cursor; upTo?: Cursor }): AsyncGenerator<Buffer[]> {
  if (scope.deletions) throw new Error('deletions carry cursors: stream them with streamSnapshot');
  yield* streamCopyLines(pool, copySql(await withSelectedPatients(pool, scope), range, false));
}

/**
 * The live resources of a range, parsed, one array per received chunk: each buffer of lines is
 * decoded once and its bodies parsed out of that text (a buffer view and a decoding per body
 * cost a tenth of the parsing again). For readers that need every resource as an object (views).
 */
export async function* streamSnapshotResources(pool: Pool, scope: SnapshotScope, range: { after?: Cursor; upTo?: Cursor }): AsyncGenerator<Record<string, unknown>[]> {
  for await (const pieces of streamSnapshotLines(pool, scope, range)) {
    const resources: Record<string, unknown>[] = [];
    for (const piece of pieces) {
      const text = piece.toString('utf8');
      let start = 0;
      for (let end = text.indexOf('\n', start); end !== -1; end = text.indexOf('\n', start)) {
        resources.push(parseStoredBody(text.slice(start, end), scope.resourceType));
        start = end + 1;
      }
    }
    yield resources;
  }
}

/**
 * A COPY's output in batches of buffers that each hold whole lines, one batch per received
 * chunk. Only a line that straddles two chunks is copied; the rest are views into the chunk.
 */
async function* streamCopyLines(pool: Pool, sql: string): AsyncGenerator<Buffer[]> {
  const client = await pool.connect();
  let failed: Error | undefined;
  let completed = false;
  const stream = client.query(copyTo(sql));
  try {
    // A line that straddles chunks, in its pieces: a large resource (tens of MB) arrives in
    // hundreds of chunks, and concatenating on each one would copy it hundreds of times.
    let rest: Buffer[] = [];
    for await (const received of stream) {
      const chunk = received as Buffer;
      const pieces: Buffer[] = [];
      let start = 0;
      if (rest.length > 0) {
        const end = chunk.indexOf(NEWLINE);
        if (end === -1) {
          rest.push(chunk);
          continue;
        }
        rest.push(chunk.subarray(0, end + 1));
        pieces.push(Buffer.concat(rest));
        rest = [];
        start = end + 1;
      }
      const last = chunk.lastIndexOf(NEWLINE);
      if (last >= start) {
        pieces.push(chunk.subarray(start, last + 1));
        start = last + 1;
      }
      if (start < chunk.length) rest.push(chunk.subarray(start));
      if (pieces.length > 0) yield pieces;
    }
    if (rest.length > 0) throw new Error('COPY output ended in the middle of a row');
    completed = true;
  } catch (err) {
    failed = err as Error;
    throw err;
  } finally {
    if (!completed) {
      // Abandoned or failed mid-COPY: the connection is in an unknown state, so discard it.
      failed ??= new Error('snapshot stream abandoned');
      stream.destroy();
    }
    client.release(failed);
  }
}
