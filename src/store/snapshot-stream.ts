/**
 * Streams the resources of a snapshot range straight out of PostgreSQL with COPY, without
 * decoding bodies: each row arrives as `body \x02 last_updated \x02 id \n`. In CSV format with
 * \x01 as quote and \x02 as delimiter nothing is quoted or escaped, because stored bodies are
 * JSON text (no raw control characters) and ids and timestamps hold none either, so `body`
 * is the NDJSON line exactly as stored.
 */
import type { Pool } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { snapshotWhere, type Cursor, type SnapshotScope } from './snapshot-scope';

export interface StreamedRow {
  /** The resource JSON, undecoded (a view into the received chunk). */
  body: Buffer;
  cursor: Cursor;
}

const NEWLINE = 0x0a;
/** CSV with \x02 between fields and \x01 as the quote: nothing in stored JSON needs quoting. */
export const COPY_FORMAT = `(FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')`;
const SEPARATOR = 0x02;

/** The body of the version a tombstone ended (so a deletion can be checked against `_typeFilter`). */
const ENDED_VERSION_BODY_SQL = `(SELECT p.body FROM resource_versions p
   WHERE p.tenant = resource_versions.tenant AND p.resource_type = resource_versions.resource_type
     AND p.id = resource_versions.id AND p.version_id = resource_versions.version_id - 1)`;

function copySql(scope: SnapshotScope, range: { after?: Cursor; upTo?: Cursor }, endedBodies: boolean): string {
  // A tombstone has no body (NULL reads back empty); the id in the cursor is what a deletion needs.
  const body = !scope.deletions ? 'body' : endedBodies ? ENDED_VERSION_BODY_SQL : 'NULL';
  return `COPY (SELECT ${body}, last_updated::text AS cursor_time, id FROM resource_versions
     WHERE ${snapshotWhere(scope, range)} ORDER BY last_updated, id) TO STDOUT ${COPY_FORMAT}`;
}

/**
 * Yields batches of rows in (last_updated, id) order, one batch per received chunk. Memory
 * holds one chunk; the query's connection is released when the iteration ends or is abandoned.
 * For deletions the body is empty, or with `endedBodies` the body of the version the deletion
 * ended (empty if there is none).
 */
export async function* streamSnapshot(
  pool: Pool,
  scope: SnapshotScope,
  range: { after?: Cursor; upTo?: Cursor },
  options: { endedBodies?: boolean } = {},
): AsyncGenerator<StreamedRow[]> {
  for await (const rows of streamCopyRows(pool, copySql(scope, range, options.endedBodies ?? false), 2)) {
    yield rows.map(({ body, fields }) => ({ body, cursor: { lastUpdated: fields[0], id: fields[1] } }));
  }
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
  const client = await pool.connect();
  let failed: Error | undefined;
  let completed = false;
  const stream = client.query(copyTo(sql));
  try {
    let rest: Buffer | undefined;
    for await (const received of stream) {
      const chunk: Buffer = rest ? Buffer.concat([rest, received as Buffer]) : (received as Buffer);
      const rows: CopiedRow[] = [];
      let start = 0;
      for (let end = chunk.indexOf(NEWLINE, start); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
        const fields: string[] = new Array(fieldCount);
        let fieldEnd = end;
        for (let f = fieldCount - 1; f >= 0; f--) {
          const at = chunk.lastIndexOf(SEPARATOR, fieldEnd - 1);
          fields[f] = chunk.toString('latin1', at + 1, fieldEnd);
          fieldEnd = at;
        }
        rows.push({ body: chunk.subarray(start, fieldEnd), fields });
        start = end + 1;
      }
      rest = start < chunk.length ? chunk.subarray(start) : undefined;
      if (rows.length > 0) yield rows;
    }
    if (rest) throw new Error('COPY output ended in the middle of a row');
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
