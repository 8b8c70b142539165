/**
 * A lake's tables read as a user reads them, with DuckDB's own Parquet reader and Hive
 * partitioning (never bulkflow's code), from a local copy of the destination: the runs applied
 * by the rule docs/lake.md gives (a full run replaces the table; an incremental run drops the
 * keys in its deleted file and the keys of its rows, then adds its rows).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { DuckDBInstance } from '@duckdb/node-api';

export type Row = Record<string, unknown>;

export interface LakeManifestView {
  run: string;
  subjects: Record<string, { mode: string; fullBecause?: string; snapshot: string; rows: number; files: Array<{ key: string; rows: number; bytes: number }>; deleted?: { key: string; rows: number } }>;
}

const HIVE = "hive_partitioning = true, hive_types = {'run': VARCHAR}";

/** Every row of a table, by run; and each run's deleted keys. */
export async function readTable(db: DuckDBInstance, tableDir: string, key: string): Promise<{ rows: Map<string, Row[]>; deleted: Map<string, string[]> }> {
  const connection = await db.connect();
  const rows = new Map<string, Row[]>();
  const deleted = new Map<string, string[]>();
  try {
    const folders = readdirSync(tableDir).filter((d) => d.startsWith('run='));
    if (folders.some((d) => readdirSync(path.join(tableDir, d)).some((f) => f.startsWith('part-')))) {
      const parts = await connection.runAndReadAll(`SELECT * FROM read_parquet('${tableDir}/*/part-*.parquet', ${HIVE})`);
      for (const { run, ...rest } of parts.getRowObjectsJson() as Row[]) rows.set(String(run), [...(rows.get(String(run)) ?? []), rest]);
    }
    if (folders.some((d) => existsSync(path.join(tableDir, d, 'deleted.parquet')))) {
      const gone = await connection.runAndReadAll(`SELECT * FROM read_parquet('${tableDir}/*/deleted.parquet', ${HIVE})`);
      for (const row of gone.getRowObjectsJson() as Row[]) deleted.set(String(row.run), [...(deleted.get(String(row.run)) ?? []), String(row[key])]);
    }
  } finally {
    connection.closeSync();
  }
  return { rows, deleted };
}

/** The run manifests under `<lakeDir>/_runs/`, oldest first. */
export function runManifests(lakeDir: string): LakeManifestView[] {
  return readdirSync(path.join(lakeDir, '_runs'))
    .sort()
    .map((f) => JSON.parse(readFileSync(path.join(lakeDir, '_runs', f), 'utf8')) as LakeManifestView);
}

/** The table as the run manifests say to apply it, from its newest full run (the files must hold what each manifest says). */
export async function applyRuns(db: DuckDBInstance, lakeDir: string, subject: string, key: string): Promise<Row[]> {
  const { rows, deleted } = await readTable(db, path.join(lakeDir, subject), key);
  const manifests = runManifests(lakeDir);
  const isFull = (m: LakeManifestView) => m.subjects[subject].mode === 'full' || m.subjects[subject].fullBecause !== undefined;
  const from = manifests.map(isFull).lastIndexOf(true);
  if (from < 0) throw new Error(`no full run of ${subject} to start from`);
  let table: Row[] = [];
  for (const manifest of manifests.slice(from)) {
    const run = manifest.subjects[subject];
    const added = rows.get(manifest.run) ?? [];
    if (added.length !== run.rows) throw new Error(`run ${manifest.run} of ${subject}: ${added.length} rows in its files, ${run.rows} in its manifest`);
    if (isFull(manifest)) {
      table = [...added];
      continue;
    }
    const drop = new Set([...(deleted.get(manifest.run) ?? []), ...added.map((r) => String(r[key]))]);
    table = [...table.filter((r) => !drop.has(String(r[key]))), ...added];
  }
  return table;
}

/** The rows of these Parquet files. */
export async function readParquet(db: DuckDBInstance, files: string[]): Promise<Row[]> {
  if (files.length === 0) return [];
  const connection = await db.connect();
  try {
    return (await connection.runAndReadAll(`SELECT * FROM read_parquet([${files.map((f) => `'${f}'`).join(', ')}])`)).getRowObjectsJson() as Row[];
  } finally {
    connection.closeSync();
  }
}

/** Rows as a sorted multiset of their JSON, columns in name order. */
export const multiset = (rows: Row[]) => rows.map((r) => JSON.stringify(Object.fromEntries(Object.entries(r).sort(([a], [b]) => a.localeCompare(b))))).sort();
