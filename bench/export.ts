/**
 * Export throughput: a store of >= 1,000,000 resources (generated once, reused), exported by a
 * real worker process to local files and to the GCS emulator, against the physical limit
 * measured in the same run: PostgreSQL's own COPY of the same rows, as text, into a file.
 * Also prints the worker's peak RSS for a small and the full export.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Storage } from '@google-cloud/storage';
import { Client, Connection } from '@temporalio/client';
import { to as copyTo } from 'pg-copy-streams';
import { loadConfig } from '../src/config';
import { createApp } from '../src/http/app';
import { createLogger } from '../src/log';
import { startGcsEmulator } from '../src/output/gcs-emulator';
import { GcsOutputStore } from '../src/output/gcs-output-store';
import { LocalOutputStore } from '../src/output/local-output-store';
import type { OutputStore } from '../src/output/output-store';
import { findFreePort } from '../src/process/free-port';
import { generateIntoStore } from '../src/generate/write-population';
import { createPool, ensureDatabase } from '../src/store/database';
import { migrate } from '../src/store/migrate';
import { ResourceStore } from '../src/store/resource-store';
import { startDevServer } from '../src/temporal/dev-server';
import { timed } from './support';

const cli = path.resolve(__dirname, '..', 'src', 'cli.js');
const TENANT = 'bench';

export async function benchExport(args: string[]): Promise<void> {
  const target = Number(args.find((a) => a.startsWith('--resources='))?.split('=')[1] ?? '1000000');
  const server = new URL(process.env.BENCH_DATABASE_SERVER_URL ?? 'postgres://127.0.0.1:5432');
  server.pathname = '/bulkflow_bench_export';
  const databaseUrl = server.toString();
  await ensureDatabase(databaseUrl);
  const pool = createPool(databaseUrl, { max: 4 });
  await migrate(pool);
  const store = new ResourceStore(pool, TENANT);

  const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM resource_versions WHERE tenant = $1 AND superseded_at IS NULL', [TENANT]);
  let resources = Number(rows[0].n);
  if (resources < target) {
    const patients = Math.ceil((target - resources) / 240);
    console.log(`generating about ${target - resources} resources (${patients} patients) into ${databaseUrl} (kept for later runs)...`);
    const seconds = await timed(() => generateIntoStore(store, { patients, seed: 1000 + resources }));
    const { rows: again } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM resource_versions WHERE tenant = $1 AND superseded_at IS NULL', [TENANT]);
    console.log(`generated ${Number(again[0].n) - resources} resources in ${seconds.toFixed(1)} s`);
    resources = Number(again[0].n);
  }
  await pool.query('VACUUM ANALYZE resource_versions');

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-bench-export-'));
  const devServer = await startDevServer({ headless: true });
  const gcs = await startGcsEmulator();
  const storage = new Storage({ apiEndpoint: gcs.endpoint, projectId: 'bench' });
  await storage.createBucket('bench-exports');
  const results: Array<{ label: string; resources: number; bytes: number; seconds: number; peakRssMb?: number }> = [];
  try {
    // The physical limit: the same rows, as text, straight from PostgreSQL into a file.
    const copyFile = path.join(tmp, 'copy.ndjson');
    const snapshot = await store.snapshotTime();
    const copySeconds = await timed(async () => {
      const client = await pool.connect();
      try {
        await pipeline(
          client.query(copyTo(`COPY (SELECT body FROM resource_versions WHERE tenant = '${TENANT}' AND last_updated <= '${snapshot}'
              AND (superseded_at IS NULL OR superseded_at > '${snapshot}') AND NOT deleted
              ORDER BY resource_type, last_updated, id) TO STDOUT`)),
          createWriteStream(copyFile),
        );
      } finally {
        client.release();
      }
    });
    results.push({ label: 'PostgreSQL COPY to a file (limit)', resources, bytes: statSync(copyFile).size, seconds: copySeconds });
    rmSync(copyFile);

    const localDir = path.join(tmp, 'local');
    const runs: Array<{ label: string; env: Record<string, string>; output: OutputStore; query: string }> = [
      { label: 'export, one type (Encounter), local', env: { OUTPUT_BACKEND: 'local', OUTPUT_DIR: localDir }, output: new LocalOutputStore(localDir), query: '?_type=Encounter' },
      { label: 'export, all types, local files', env: { OUTPUT_BACKEND: 'local', OUTPUT_DIR: localDir }, output: new LocalOutputStore(localDir), query: '' },
      {
        label: 'export, all types, GCS emulator',
        env: { OUTPUT_BACKEND: 'gcs', GCS_BUCKET: 'bench-exports', STORAGE_EMULATOR_HOST: gcs.endpoint },
        output: new GcsOutputStore(storage, 'bench-exports'),
        query: '',
      },
      // _typeFilter costs: both filters keep every Observation, so the runs differ only in where they filter.
      { label: 'Observation, no filter', env: { OUTPUT_BACKEND: 'local', OUTPUT_DIR: localDir }, output: new LocalOutputStore(localDir), query: '?_type=Observation' },
      {
        label: 'Observation, filter in SQL (_lastUpdated)',
        env: { OUTPUT_BACKEND: 'local', OUTPUT_DIR: localDir },
        output: new LocalOutputStore(localDir),
        query: `?_type=Observation&_typeFilter=${encodeURIComponent('Observation?_lastUpdated=ge2000-01-01')}`,
      },
      {
        label: 'Observation, filter in worker (status)',
        env: { OUTPUT_BACKEND: 'local', OUTPUT_DIR: localDir },
        output: new LocalOutputStore(localDir),
        query: `?_type=Observation&_typeFilter=${encodeURIComponent('Observation?status=final')}`,
      },
    ];
    // --case=<text> runs only the cases whose label contains it (the COPY limit always runs).
    const only = args.find((a) => a.startsWith('--case='))?.split('=')[1];
    for (const run of runs.filter((r) => !only || r.label.toLowerCase().includes(only.toLowerCase()))) {
      const { exportId, ...figures } = await runExport(run.label, { databaseUrl, temporalAddress: devServer.address, env: run.env, output: run.output, query: run.query });
      results.push(figures);
      await run.output.deletePrefix(`${TENANT}/${exportId}/`);
    }
  } finally {
    await gcs.stop();
    await devServer.stop();
    await pool.end();
    rmSync(tmp, { recursive: true, force: true });
  }

  const limit = results[0];
  console.log('');
  console.log(`${'case'.padEnd(40)} ${'resources'.padStart(10)} ${'MB'.padStart(8)} ${'seconds'.padStart(8)} ${'res/s'.padStart(9)} ${'MB/s'.padStart(7)} ${'vs COPY'.padStart(8)} ${'peak RSS'.padStart(9)}`);
  for (const r of results) {
    const rate = r.resources / r.seconds;
    console.log(
      `${r.label.padEnd(40)} ${String(r.resources).padStart(10)} ${(r.bytes / 1e6).toFixed(0).padStart(8)} ${r.seconds.toFixed(1).padStart(8)} ${rate.toFixed(0).padStart(9)} ${(r.bytes / 1e6 / r.seconds).toFixed(1).padStart(7)} ${(rate / (limit.resources / limit.seconds)).toFixed(2).padStart(7)}x ${r.peakRssMb === undefined ? '-'.padStart(9) : `${r.peakRssMb.toFixed(0)} MB`.padStart(9)}`,
    );
  }
}

/** Kicks off one export through the real API, run by a fresh worker process; measures time and the worker's peak RSS. */
async function runExport(
  label: string,
  options: { databaseUrl: string; temporalAddress: string; env: Record<string, string>; output: OutputStore; query: string },
) {
  const taskQueue = `bench-${Date.now()}`;
  const settings = loadConfig().export; // the defaults, or EXPORT_* from the environment
  // BENCH_WORKER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=prof") profiles the worker.
  const nodeArgs = process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const worker: ChildProcess = spawn(process.execPath, [...nodeArgs, cli, 'worker'], {
    env: { ...process.env, ...options.env, TEMPORAL_ADDRESS: options.temporalAddress, TEMPORAL_TASK_QUEUE: taskQueue, DATABASE_URL: options.databaseUrl, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Time the export, not the worker's start: wait until it polls, as a running service's worker does.
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    worker.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('"worker polling"')) resolve();
    });
    worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before polling`)));
  });
  const connection = await Connection.connect({ address: options.temporalAddress });
  const client = new Client({ connection });
  const port = await findFreePort();
  const app = createApp({
    config: { baseUrl: `http://127.0.0.1:${port}`, fhirBasePath: '/fhir' },
    log: createLogger('warn'),
    bulkExport: { client, taskQueue, output: options.output, exportSettings: settings, retryAfterSeconds: 1 },
  });
  const server = app.listen(port, '127.0.0.1');
  try {
    let manifest: { output: Array<{ count: number; url: string }> } | undefined;
    const seconds = await timed(async () => {
      // The bench store is tenant `bench`: its URLs carry the tenant prefix.
      const kick = await fetch(`http://127.0.0.1:${port}/t/${TENANT}/fhir/$export${options.query}`, { headers: { Accept: 'application/fhir+json', Prefer: 'respond-async' } });
      const statusUrl = kick.headers.get('content-location')!;
      for (;;) {
        const res = await fetch(statusUrl);
        if (res.status === 200) {
          manifest = (await res.json()) as typeof manifest;
          return;
        }
        if (res.status !== 202) throw new Error(`status ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
        await new Promise((resolve) => setTimeout(resolve, 250)); // a brisk client; each poll is a workflow query
      }
    });
    const peakRssMb = peakRss(worker.pid!);
    const exportId = manifest!.output[0].url.split('/').slice(-2)[0];
    console.log(`  ${label}: ${await phases(client, exportId)}`);
    const resources = manifest!.output.reduce((n, o) => n + o.count, 0);
    let bytes = 0;
    for (const key of await options.output.list(`${TENANT}/${exportId}/`)) {
      const reader = await options.output.openReader(key);
      for await (const chunk of reader!) bytes += (chunk as Buffer).length;
    }
    return { label, resources, bytes, seconds, peakRssMb, exportId };
  } finally {
    server.close();
    await connection.close();
    worker.kill('SIGTERM');
    await new Promise((resolve) => worker.once('exit', resolve));
  }
}

/** Where an export's time went, from its workflow history: planning, then the partitions (wall and summed). */
async function phases(client: Client, exportId: string): Promise<string> {
  const history = await client.workflow.getHandle(exportId).fetchHistory();
  const seconds = (t: unknown) => {
    const ts = t as { seconds?: { toNumber(): number } | number; nanos?: number };
    const s = typeof ts.seconds === 'number' ? ts.seconds : (ts.seconds?.toNumber() ?? 0);
    return s + (ts.nanos ?? 0) / 1e9;
  };
  const events = history.events ?? [];
  const start = seconds(events[0].eventTime);
  const scheduled = new Map<number, { type: string; at: number }>();
  const spans: Array<{ type: string; from: number; to: number }> = [];
  for (const e of events) {
    const at = seconds(e.eventTime);
    if (e.activityTaskScheduledEventAttributes) scheduled.set(Number(e.eventId), { type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', at });
    const done = e.activityTaskCompletedEventAttributes;
    if (done) {
      const from = scheduled.get(Number(done.scheduledEventId))!;
      spans.push({ type: from.type, from: from.at, to: at });
    }
  }
  const plan = spans.find((s) => s.type === 'planExport');
  const parts = spans.filter((s) => s.type !== 'planExport');
  const first = Math.min(...parts.map((s) => s.from));
  const last = Math.max(...parts.map((s) => s.to));
  const summed = parts.reduce((n, s) => n + s.to - s.from, 0);
  return `planning ${plan ? (plan.to - plan.from).toFixed(2) : '?'} s (from start ${plan ? (plan.from - start).toFixed(2) : '?'} s); ${parts.length} partitions in ${(last - first).toFixed(2)} s wall, ${summed.toFixed(2)} s summed`;
}

/** Peak resident set size of a process in MB (VmHWM). */
function peakRss(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}
