/**
 * What an analyst does instead of `$sql-export`: `$export?_type=Observation`, then DuckDB over
 * the NDJSON files (`read_ndjson_objects` and JSON paths, the view's columns written by hand) to
 * Parquet. The SQL here is the bench's own, per view, and its rows are checked equal to
 * bulkflow's before any figure counts.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { benchNode } from './service';

const run = promisify(execFile);

/** getReferenceKey(Patient) by hand: the id of a `Patient/<id>` reference. */
const patientKey = "CASE WHEN json->'subject'->>'reference' LIKE 'Patient/%' THEN split_part(json->'subject'->>'reference', '/', 2) END";

/** Each view's columns in DuckDB SQL over the NDJSON (`files`: a glob), in the view's column order and types. */
export const HAND_MADE: Record<string, (files: string) => string> = {
  observation_flat: (files) => `SELECT json->>'id' AS id, ${patientKey} AS patient,
      json->'code'->'coding'->0->>'system' AS system, json->'code'->'coding'->0->>'code' AS code,
      TRY_CAST(json->'valueQuantity'->>'value' AS DOUBLE) AS value, json->'valueQuantity'->>'unit' AS unit,
      json->>'effectiveDateTime' AS effective
    FROM read_ndjson_objects('${files}')`,
  observation_codings: (files) => `SELECT json->>'id' AS id, ${patientKey} AS patient, json->>'status' AS status,
      json->>'effectiveDateTime' AS effective, json->>'issued' AS issued,
      TRY_CAST(json->'valueQuantity'->>'value' AS DOUBLE) AS value, json->'valueQuantity'->>'unit' AS unit,
      json->'category'->0->'coding'->0->>'code' AS category,
      coding->>'system' AS system, coding->>'code' AS code, coding->>'display' AS display
    FROM read_ndjson_objects('${files}'), unnest(json_extract(json, '$.code.coding[*]')) AS c(coding)`,
};

/** Runs the hand-made SQL of `view` over `ndjsonDir`'s NDJSON files into `out`, in a process of its own. */
export async function flattenByHand(view: string, ndjsonDir: string, out: string): Promise<{ seconds: number; rows: number; peakRssMb: number }> {
  const { stdout } = await run(benchNode(), [path.join(__dirname, 'duckdb-flatten.js'), HAND_MADE[view](path.join(ndjsonDir, 'Observation-*.ndjson')), out], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as { seconds: number; rows: number; peakRssMb: number };
}

/** The file reader of a format, as DuckDB names it (Parquet, else NDJSON). */
const readerOf = (file: string) => (file.endsWith('.parquet') ? 'read_parquet' : 'read_ndjson_auto');

/**
 * Rows in one set of files and not the other, both ways (0: the same rows, as multisets, values
 * compared as text), both in the format of `theirs`; `columns` in the view's order.
 */
export async function rowsDiffering(ours: string[], theirs: string, columns: string[]): Promise<number> {
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  const list = (files: string[]) => `[${files.map((f) => `'${f.replaceAll("'", "''")}'`).join(', ')}]`;
  const asText = (from: string) => `SELECT ${columns.map((c) => `CAST("${c}" AS VARCHAR) AS "${c}"`).join(', ')} FROM ${readerOf(theirs)}(${from})`;
  const a = asText(list(ours));
  const b = asText(list([theirs]));
  const result = await connection.runAndReadAll(`SELECT (SELECT count(*) FROM (${a} EXCEPT ALL ${b})) + (SELECT count(*) FROM (${b} EXCEPT ALL ${a}))`);
  const differing = Number(result.getRows()[0][0]);
  connection.closeSync();
  db.closeSync();
  return differing;
}
