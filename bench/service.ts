/**
 * bulkflow as a bench measures it: a fresh worker process (polling before the clock starts, as a
 * running service's is) and the real API in this process, on one store; the worker's peak RSS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadPayloadKeys } from '../src/temporal/payload-keys';
import { encryptingDataConverter } from '../src/temporal/data-converter';
import { loadConfig, type Config } from '../src/config';
import { createApp } from '../src/http/app';
import { createLogger } from '../src/log';
import type { OutputStore } from '../src/output/output-store';
import { findFreePort } from '../src/process/free-port';
import { createPool } from '../src/store/database';
import { ResourceStore } from '../src/store/resource-store';
import { eventSeconds, phases } from './history';

const cli = path.resolve(__dirname, '..', 'src', 'cli.js');

export interface BenchServiceOptions {
  databaseUrl: string;
  tenant: string;
  temporalAddress: string;
  /** The worker's output settings (OUTPUT_BACKEND, ...). */
  env: Record<string, string>;
  output: OutputStore;
  /** The receiving side's settings (the worker reads them from `env`: BULK_SUBMITTERS_FILE). */
  bulkSubmit?: Config['bulkSubmit'];
}

export interface BenchService {
  /** The tenant's FHIR base on the API (bench stores' tenant is not the default: URLs carry the prefix). */
  fhirBase: string;
  client: Client;
  /** The worker's peak RSS so far, in MB (VmHWM). */
  peakRssMb(): number;
  /** The worker's RSS once it polled, before any work, in MB. */
  idleRssMb: number;
}

/** The Node.js that the bench's worker processes run on: `--node=<version>` (bench/run.ts) sets it; the pinned runtime otherwise. */
export const benchNode = (): string => process.env.BENCH_WORKER_NODE ?? process.execPath;

export async function withBenchService<T>(options: BenchServiceOptions, work: (service: BenchService) => Promise<T>): Promise<T> {
  const taskQueue = `bench-${Date.now()}`;
  const settings = loadConfig().export; // the defaults, or EXPORT_* from the environment
  // BENCH_WORKER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=prof") profiles the worker.
  const nodeArgs = process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const worker: ChildProcess = spawn(benchNode(), [...nodeArgs, cli, 'worker'], {
    // MALLOC_ARENA_MAX=2 as the image sets it (deploy/Dockerfile), so the bench measures what deployments run.
    env: { MALLOC_ARENA_MAX: '2', ...process.env, ...options.env, TEMPORAL_ADDRESS: options.temporalAddress, TEMPORAL_TASK_QUEUE: taskQueue, DATABASE_URL: options.databaseUrl, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    worker.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('"worker polling"')) resolve();
    });
    worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before polling`)));
  });
  const idleRssMb = rss(worker.pid!, 'VmRSS');
  const connection = await Connection.connect({ address: options.temporalAddress });
  const port = await findFreePort();
  const pool = createPool(options.databaseUrl, { max: 2 }); // the API checks Groups and views at kick-off
  // The worker encrypts with the store's payload key: the API side reads with the same.
  const client = new Client({ connection, dataConverter: encryptingDataConverter(await loadPayloadKeys(pool, undefined)) });
  const app = createApp({
    config: { baseUrl: `http://127.0.0.1:${port}`, fhirBasePath: '/fhir', ...(options.bulkSubmit ? { bulkSubmit: options.bulkSubmit } : {}) },
    log: createLogger('warn'),
    store: new ResourceStore(pool, options.tenant),
    bulkExport: { client, taskQueue, output: options.output, exportSettings: settings, retryAfterSeconds: 1 },
  });
  const server = app.listen(port, '127.0.0.1');
  try {
    return await work({ fhirBase: `http://127.0.0.1:${port}/t/${options.tenant}/fhir`, client, peakRssMb: () => peakRss(worker.pid!), idleRssMb });
  } finally {
    server.close();
    await connection.close();
    await pool.end();
    worker.kill('SIGTERM');
    await new Promise((resolve) => worker.once('exit', resolve));
  }
}

/** Bytes of every file under a prefix. */
export async function storedBytes(output: OutputStore, prefix: string): Promise<number> {
  let bytes = 0;
  for (const key of await output.list(prefix)) {
    const reader = await output.openReader(key);
    for await (const chunk of reader!) bytes += (chunk as Buffer).length;
  }
  return bytes;
}

/** Peak resident set size of a process in MB (VmHWM). */
const peakRss = (pid: number): number => rss(pid, 'VmHWM');

/** A resident set size of a process from /proc, in MB. */
function rss(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

/** The export's own duration: from its workflow's start to its last partition's completion (the workflow stays open to serve files). */
export async function exportSeconds(client: Client, workflowId: string): Promise<number> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const done = events.filter((e) => e.activityTaskCompletedEventAttributes);
  return eventSeconds(done[done.length - 1].eventTime) - eventSeconds(events[0].eventTime);
}

/**
 * One `$export` (kick-off path and query under the tenant's FHIR base) by a fresh worker: its
 * resources, bytes, seconds (from its workflow history) and the worker's peak RSS. Its files are
 * deleted afterwards.
 */
export async function timedBulkExport(
  service: BenchServiceOptions,
  kickoff: string,
  /** Runs over the export's files (their key prefix) before they are deleted. */
  withFiles?: (prefix: string) => Promise<void>,
): Promise<{ resources: number; bytes: number; seconds: number; peakRssMb: number }> {
  return withBenchService(service, async ({ fhirBase, client, peakRssMb }) => {
    const kick = await fetch(`${fhirBase}${kickoff}`, { headers: { Accept: 'application/fhir+json', Prefer: 'respond-async' } });
    if (kick.status !== 202) throw new Error(`${kickoff} answered ${kick.status}: ${await kick.text()}`);
    const statusUrl = kick.headers.get('content-location')!;
    for (let res = await fetch(statusUrl); res.status !== 200; res = await fetch(statusUrl)) {
      if (res.status !== 202) throw new Error(`status ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const manifest = (await (await fetch(statusUrl)).json()) as { output: Array<{ count: number; url: string }> };
    const exportId = statusUrl.split('/').pop()!;
    const seconds = await exportSeconds(client, exportId);
    console.log(`  ${kickoff}: ${await phases(client, exportId)}`);
    const bytes = await storedBytes(service.output, `${service.tenant}/${exportId}/`);
    await withFiles?.(`${service.tenant}/${exportId}/`);
    await service.output.deletePrefix(`${service.tenant}/${exportId}/`);
    return { resources: manifest.output.reduce((n, o) => n + o.count, 0), bytes, seconds, peakRssMb: peakRssMb() };
  });
}

/** Kicks off a `$sql-export` with these parameters, polls it to its 303 and reads its manifest; its export id. */
export async function sqlExportDone(fhirBase: string, parameter: unknown[]): Promise<string> {
  const kick = await fetch(`${fhirBase}/$sql-export`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/fhir+json', Prefer: 'respond-async' },
    body: JSON.stringify({ resourceType: 'Parameters', parameter }),
  });
  if (kick.status !== 202) throw new Error(`$sql-export answered ${kick.status}: ${await kick.text()}`);
  const statusUrl = kick.headers.get('content-location')!;
  for (;;) {
    const res = await fetch(statusUrl, { redirect: 'manual' });
    if (res.status === 303) break;
    if (res.status !== 202) throw new Error(`status ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 1000)); // Retry-After: polling sooner is 429
  }
  const result = await fetch(`${statusUrl}/result`);
  if (result.status !== 200) throw new Error(`result ${result.status}: ${await result.text()}`);
  await result.arrayBuffer();
  return statusUrl.split('/').pop()!;
}
