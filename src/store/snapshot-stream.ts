/**
 * Streams the resources of a snapshot range straight out of PostgreSQL with COPY, without
 * decoding bodies: each row arrives as `body \x02 last_updated \x02 id \n`. In CSV format with
 * \x01 as quote and \x02 as delimiter nothing is quoted or escaped, because stored bodies are
 * JSON text (no raw control characters) and ids and timestamps hold none either, so `body`
 * is the NDJSON line exactly as stored.
 */
import type { Pool } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Cursor, SnapshotScope } from './snapshot-reader';

export interface StreamedRow {
  /** The resource JSON, undecoded (a view into the received chunk). */
  body: Buffer;
  cursor: Cursor;
}

const NEWLINE = 0x0a;
const SEPARATOR = 0x02;

const literal = (value: string) => `'${value.replace(/'/g, "''")}'`;
const timestamp = (value: string) => `${literal(value)}::timestamptz`;

/** COPY cannot take parameters: every value is quoted as a literal (and ids/cursors come from the store). */
function copySql(scope: SnapshotScope, range: { after?: Cursor; upTo?: Cursor }): string {
  const conditions = [
    `tenant = ${literal(scope.tenant)}`,
    `resource_type = ${literal(scope.resourceType)}`,
    `last_updated <= ${timestamp(scope.transactionTime)}`,
    `(superseded_at IS NULL OR superseded_at > ${timestamp(scope.transactionTime)})`,
    'NOT deleted',
  ];
  if (scope.since) conditions.push(`last_updated > ${timestamp(scope.since)}`);
  if (scope.until) conditions.push(`last_updated <= ${timestamp(scope.until)}`);
  if (range.after) conditions.push(`(last_updated, id) > (${timestamp(range.after.lastUpdated)}, ${literal(range.after.id)})`);
  if (range.upTo) conditions.push(`(last_updated, id) <= (${timestamp(range.upTo.lastUpdated)}, ${literal(range.upTo.id)})`);
  return `COPY (SELECT body, last_updated::text AS cursor_time, id FROM resource_versions
     WHERE ${conditions.join(' AND ')} ORDER BY last_updated, id)
     TO STDOUT (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')`;
}

/**
 * Yields batches of rows in (last_updated, id) order, one batch per received chunk. Memory
 * holds one chunk; the query's connection is released when the iteration ends or is abandoned.
 */
export async function* streamSnapshot(pool: Pool, scope: SnapshotScope, range: { after?: Cursor; upTo?: Cursor }): AsyncGenerator<StreamedRow[]> {
  const client = await pool.connect();
  let failed: Error | undefined;
  let completed = false;
  const stream = client.query(copyTo(copySql(scope, range)));
  try {
    let rest: Buffer | undefined;
    for await (const received of stream) {
      const chunk: Buffer = rest ? Buffer.concat([rest, received as Buffer]) : (received as Buffer);
      const rows: StreamedRow[] = [];
      let start = 0;
      for (let end = chunk.indexOf(NEWLINE, start); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
        const idAt = chunk.lastIndexOf(SEPARATOR, end);
        const timeAt = chunk.lastIndexOf(SEPARATOR, idAt - 1);
        rows.push({
          body: chunk.subarray(start, timeAt),
          cursor: { lastUpdated: chunk.toString('latin1', timeAt + 1, idAt), id: chunk.toString('latin1', idAt + 1, end) },
        });
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
