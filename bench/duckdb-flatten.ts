/**
 * The user's way round bulkflow, as its own process: DuckDB over the NDJSON files of an `$export`,
 * the view's columns written by hand in SQL, to a Parquet or NDJSON file. `node duckdb-flatten.js
 * <sql> <out.parquet|out.ndjson>`; prints `{ seconds, rows, peakRssMb }` (its own peak RSS, read before it exits).
 */
import { readFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';

async function main(): Promise<void> {
  const [select, out] = process.argv.slice(2);
  const started = performance.now();
  const db = await DuckDBInstance.create(':memory:', { threads: '2' });
  const connection = await db.connect();
  // The output's format by its name: Parquet, else NDJSON (DuckDB's JSON format writes one object per line).
  const format = out.endsWith('.parquet') ? 'parquet' : 'json';
  await connection.run(`COPY (${select}) TO '${out.replaceAll("'", "''")}' (FORMAT ${format})`);
  const seconds = (performance.now() - started) / 1000;
  const rows = Number((await connection.runAndReadAll(`SELECT count(*) FROM ${format === 'parquet' ? 'read_parquet' : 'read_ndjson_objects'}('${out.replaceAll("'", "''")}')`)).getRows()[0][0]);
  const peakRssMb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) / 1024;
  console.log(JSON.stringify({ seconds, rows, peakRssMb }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
