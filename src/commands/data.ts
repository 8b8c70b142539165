/** `bulkflow migrate | import | generate`: getting data into the store from the command line. */
import type { Config } from '../config';
import { generateIntoStore, generateToNdjson } from '../generate/write-population';
import { importPaths, type ImportSummary } from '../import/importer';
import { countImportProgress, importMetrics, processRegistry } from '../metrics/metrics';
import { startMetricsServer } from '../metrics/metrics-server';
import { progressReporter } from './progress';
import { createPool, ensureDatabase } from '../store/database';
import { migrate } from '../store/migrate';
import { ResourceStore } from '../store/resource-store';

/** A running count on a terminal (rewritten in place), or a line every few seconds in a log. */
async function withStore<T>(config: Config, work: (store: ResourceStore) => Promise<T>): Promise<T> {
  await ensureDatabase(config.databaseUrl);
  const pool = createPool(config.databaseUrl);
  try {
    await migrate(pool);
    return await work(new ResourceStore(pool));
  } finally {
    await pool.end();
  }
}

export async function migrateCommand(config: Config): Promise<void> {
  await ensureDatabase(config.databaseUrl);
  const pool = createPool(config.databaseUrl);
  try {
    const applied = await migrate(pool);
    console.log(applied.length ? `applied migrations ${applied.join(', ')}` : 'schema is up to date');
  } finally {
    await pool.end();
  }
}

export async function importCommand(config: Config, paths: string[]): Promise<number> {
  if (paths.length === 0) {
    console.error('Usage: bulkflow import <file-or-directory>...');
    return 2;
  }
  const started = Date.now();
  const progress = progressReporter('import', 'files');
  // With METRICS_PORT, the import's counters are scraped while it runs (its throughput is their rate).
  const metrics = importMetrics();
  const count = countImportProgress(metrics);
  const server = config.metricsPort === undefined ? undefined : await startMetricsServer({ host: config.metricsHost, port: config.metricsPort, registries: [processRegistry(), metrics.registry] });
  const summary = await withStore(config, (store) =>
    importPaths(store, paths, {
      onProgress: (p) => {
        count(p);
        progress.update(p.filesDone, p.filesTotal, `${p.resources} resources`);
      },
    }),
  ).finally(async () => {
    progress.stop();
    await server?.close();
  });
  printImportSummary(summary, (Date.now() - started) / 1000);
  return 0;
}

function printImportSummary(summary: ImportSummary, seconds: number): void {
  const written = Object.values(summary.written).reduce((a, b) => a + b, 0);
  console.log(`imported ${summary.files} files in ${seconds.toFixed(1)} s: ${written} resources written, ${summary.unchanged} unchanged, ${summary.deleted} deleted`);
  for (const [type, n] of Object.entries(summary.written).sort((a, b) => b[1] - a[1])) console.log(`  ${type.padEnd(28)} ${n}`);
  if (summary.conditionalReferences > 0) console.log(`conditional references left as written: ${summary.conditionalReferences}`);
  if (summary.unresolvedReferences.length > 0) {
    console.log(`unresolved urn:uuid references: ${summary.unresolvedReferences.length}`);
    for (const u of summary.unresolvedReferences.slice(0, 20)) console.log(`  ${u.resource} -> ${u.reference}`);
  }
  if (summary.skipped.length > 0) {
    console.log(`skipped: ${summary.skipped.length}`);
    for (const s of summary.skipped.slice(0, 50)) console.log(`  ${s.file}${s.where ? ` (${s.where})` : ''}: ${s.reason}`);
  }
}

export async function generateCommand(config: Config, options: { patients?: string; seed?: string; ndjson?: string }): Promise<number> {
  const patients = Number(options.patients ?? '10');
  const seed = Number(options.seed ?? '1');
  if (!/^\d+$/.test(options.patients ?? '10') || patients < 1 || !/^-?\d+$/.test(options.seed ?? '1')) {
    console.error('Usage: bulkflow generate [--patients N (10)] [--seed S (1)] [--ndjson DIR]: N a whole number from 1, S a whole number');
    return 2;
  }
  const started = Date.now();
  const ndjsonDir = options.ndjson;
  const progress = progressReporter('generate', 'patients');
  const counts = ndjsonDir
    ? await generateToNdjson(ndjsonDir, { patients, seed })
    : await withStore(config, (store) => generateIntoStore(store, { patients, seed, onProgress: (p) => progress.update(p.patients, patients, `${p.resources} resources`) })).finally(() => progress.stop());
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const seconds = (Date.now() - started) / 1000;
  console.log(`generated ${total} resources for ${patients} patients (seed ${seed}) in ${seconds.toFixed(1)} s${ndjsonDir ? ` into ${ndjsonDir}` : ''}`);
  return 0;
}
