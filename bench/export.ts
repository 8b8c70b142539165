/**
 * Export throughput at every level, each export run by a real worker process through the real
 * API, against limits measured in the same run: PostgreSQL's own COPY of the same rows into a
 * file, and for each bucket backend (`--output=gcs,s3,azure`: fake-gcs-server, versitygw,
 * Azurite) the same bytes uploaded to the same server in parts of the same size with that
 * provider's own SDK. Also prints the worker's peak RSS.
 */
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Storage } from '@google-cloud/storage';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { loadConfig } from '../src/config';
import { startGcsEmulator } from '../src/output/gcs-emulator';
import { GcsOutputStore } from '../src/output/gcs-output-store';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { BlobServiceClient } from '@azure/storage-blob';
import { AzureOutputStore } from '../src/output/azure-output-store';
import { startAzurite } from '../src/output/azurite';
import { S3OutputStore } from '../src/output/s3-output-store';
import { startS3Server } from '../src/output/s3-server';
import { LocalOutputStore } from '../src/output/local-output-store';
import type { OutputStore } from '../src/output/output-store';
import { generateIntoStore } from '../src/generate/write-population';
import { importPaths } from '../src/import/importer';
import { createPool, ensureDatabase } from '../src/store/database';
import { migrate } from '../src/store/migrate';
import { ResourceStore } from '../src/store/resource-store';
import { startDevServer } from '../src/temporal/dev-server';
import { benchDatabase, timed } from './support';
import { storedBytes, withBenchService } from './service';
import { phases } from './history';

const TENANT = 'bench';

interface Measured {
  label: string;
  resources: number;
  bytes: number;
  seconds: number;
  peakRssMb?: number;
  /** The row this one is compared with besides the store's system-level export (a COPY of the same rows). */
  limit?: string;
}

/** A store to export from: where it is, which tenant, and its whole-population Group. */
export interface BenchStore {
  label: string;
  databaseUrl: string;
  tenant: string;
  groupId: string;
}

const SYNTHEA_DIR = path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'synthea-r4-100');

/**
 * Every level (system, Patient, Group, one type) on the stores users have: one generated into a
 * new database and exported at once (nothing analyzed), the kept one after VACUUM ANALYZE, and
 * the Synthea sample imported into a new database, when present. Each row is compared with the
 * same store's system-level export and with PostgreSQL's COPY of the same rows, in the same run.
 */
export async function benchExport(args: string[]): Promise<void> {
  const target = Number(args.find((a) => a.startsWith('--resources='))?.split('=')[1] ?? '1000000');
  // --case=<text>[,<text>] runs only the cases whose label contains one of them (the COPY limits always run).
  const only = args.find((a) => a.startsWith('--case='))?.split('=')[1]?.toLowerCase().split(',');
  // --stores=fresh,analyzed,synthea picks stores (default: all).
  const stores = (args.find((a) => a.startsWith('--stores='))?.split('=')[1] ?? 'fresh,analyzed,synthea').split(',');
  // --output=gcs,s3,azure: the bucket backends exported to, each against its own SDK's upload of the same bytes (default gcs).
  const outputs = (args.find((a) => a.startsWith('--output='))?.split('=')[1] ?? 'gcs').split(',');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-bench-export-'));
  const devServer = await startDevServer({ headless: true });
  const clouds: CloudTarget[] = [];
  const tables: Array<{ store: string; results: Measured[] }> = [];
  const context = { temporalAddress: devServer.address, tmp, clouds, only };
  try {
    for (const name of outputs) clouds.push(await startCloudTarget(name));
    if (stores.includes('fresh')) {
      await benchDatabase('export_fresh', async (databaseUrl) => {
        const seed = 5000;
        const pool = createPool(databaseUrl, { max: 4 });
        await migrate(pool);
        const seconds = await timed(() => generateIntoStore(new ResourceStore(pool, TENANT), { patients: Math.ceil(target / 240), seed }));
        console.log(`fresh store: generated ${await currentCount(pool, TENANT)} resources in ${seconds.toFixed(1)} s; exporting at once, nothing analyzed`);
        await pool.end();
        const store = { label: 'generated, fresh (no ANALYZE)', databaseUrl, tenant: TENANT, groupId: `population-${seed}` };
        tables.push({ store: store.label, results: await measureStore(store, context, false) });
      });
    }
    if (stores.includes('analyzed')) {
      const store = await keptStore(target);
      tables.push({ store: store.label, results: await measureStore(store, context, true) });
    }
    if (stores.includes('synthea') && existsSync(SYNTHEA_DIR)) {
      await benchDatabase('export_synthea', async (databaseUrl) => {
        const pool = createPool(databaseUrl, { max: 4 });
        await migrate(pool);
        const seconds = await timed(() => importPaths(new ResourceStore(pool, TENANT), [SYNTHEA_DIR]));
        const { rows } = await pool.query<{ id: string }>(
          "SELECT id FROM resource_versions WHERE tenant = $1 AND resource_type = 'Group' AND superseded_at IS NULL ORDER BY length(body) DESC LIMIT 1",
          [TENANT],
        );
        console.log(`Synthea sample: imported ${await currentCount(pool, TENANT)} resources in ${seconds.toFixed(1)} s; exporting at once, nothing analyzed`);
        await pool.end();
        const store = { label: 'Synthea sample, just imported', databaseUrl, tenant: TENANT, groupId: rows[0].id };
        tables.push({ store: store.label, results: await measureStore(store, context, false) });
      });
    } else if (stores.includes('synthea')) {
      console.log(`Synthea sample not found at ${SYNTHEA_DIR}: skipping that store`);
    }
  } finally {
    for (const cloud of clouds) await cloud.stop();
    await devServer.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  for (const table of tables) printExportTable(table.store, table.results);
}

/** The kept bench store (generated once, reused), vacuumed and analyzed: a store that has been running a while. */
export async function keptStore(target: number): Promise<BenchStore> {
  const server = new URL(process.env.BENCH_DATABASE_SERVER_URL ?? 'postgres://127.0.0.1:5432');
  server.pathname = '/bulkflow_bench_export';
  const databaseUrl = server.toString();
  await ensureDatabase(databaseUrl);
  const pool = createPool(databaseUrl, { max: 4 });
  try {
    await migrate(pool);
    let resources = await currentCount(pool, TENANT);
    if (resources < target) {
      const patients = Math.ceil((target - resources) / 240);
      console.log(`generating about ${target - resources} resources (${patients} patients) into ${databaseUrl} (kept for later runs)...`);
      const seconds = await timed(() => generateIntoStore(new ResourceStore(pool, TENANT), { patients, seed: 1000 + resources }));
      console.log(`generated ${(await currentCount(pool, TENANT)) - resources} resources in ${seconds.toFixed(1)} s`);
      resources = await currentCount(pool, TENANT);
    }
    await pool.query('VACUUM ANALYZE');
    // The largest Group: the first generation's population.
    const { rows } = await pool.query<{ id: string }>(
      "SELECT id FROM resource_versions WHERE tenant = $1 AND resource_type = 'Group' AND superseded_at IS NULL ORDER BY length(body) DESC LIMIT 1",
      [TENANT],
    );
    return { label: 'generated, analyzed (VACUUM ANALYZE)', databaseUrl, tenant: TENANT, groupId: rows[0].id };
  } finally {
    await pool.end();
  }
}

/** A tenant's current resources (not deleted). */
export async function currentCount(pool: Pool, tenant: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM resource_versions WHERE tenant = $1 AND superseded_at IS NULL AND NOT deleted', [tenant]);
  return Number(rows[0].n);
}

/** PostgreSQL's COPY of a store's current rows (of one type, or all) into a file: the physical limit. */
async function copyLimit(pool: Pool, tenant: string, file: string, type?: string): Promise<Omit<Measured, 'label'>> {
  const snapshot = await new ResourceStore(pool, tenant).snapshotTime();
  let resources = 0;
  const seconds = await timed(async () => {
    const client = await pool.connect();
    try {
      await pipeline(
        client.query(copyTo(`COPY (SELECT body FROM resource_versions WHERE tenant = '${tenant}' ${type ? `AND resource_type = '${type}'` : ''}
            AND last_updated <= '${snapshot}' AND (superseded_at IS NULL OR superseded_at > '${snapshot}') AND NOT deleted
            ORDER BY resource_type, last_updated, id) TO STDOUT`)),
        createWriteStream(file),
      );
    } finally {
      client.release();
    }
  });
  resources = readFileSync(file).reduce((n, byte) => (byte === 0x0a ? n + 1 : n), 0);
  const bytes = statSync(file).size;
  rmSync(file);
  return { resources, bytes, seconds };
}

const COPY_ALL = 'PostgreSQL COPY, all types (limit)';
const COPY_ENCOUNTER = 'PostgreSQL COPY, Encounter (limit)';
const SYSTEM = 'system $export, local files';

async function measureStore(
  store: BenchStore,
  context: { temporalAddress: string; tmp: string; clouds: CloudTarget[]; only?: string[] },
  analyzed: boolean,
): Promise<Measured[]> {
  const pool = createPool(store.databaseUrl, { max: 2 });
  const results: Measured[] = [];
  const localDir = path.join(context.tmp, 'local');
  const local: Target = { env: { OUTPUT_BACKEND: 'local', OUTPUT_DIR: localDir }, output: new LocalOutputStore(localDir) };
  try {
    results.push({ label: COPY_ALL, ...(await copyLimit(pool, store.tenant, path.join(context.tmp, 'copy.ndjson'))) });
    results.push({ label: COPY_ENCOUNTER, ...(await copyLimit(pool, store.tenant, path.join(context.tmp, 'copy.ndjson'), 'Encounter')) });
    const runs: Array<{ label: string; target: Target; path: string; limit?: string; cloud?: CloudTarget }> = [
      // First, as a user would: the system level, then each other level, straight after the data arrived.
      { label: SYSTEM, target: local, path: '/$export' },
      { label: 'Patient/$export, local files', target: local, path: '/Patient/$export' },
      { label: `Group/$export (${store.groupId.slice(0, 12)}), local`, target: local, path: `/Group/${store.groupId}/$export` },
      { label: 'one type (Encounter), local', target: local, path: '/$export?_type=Encounter', limit: COPY_ENCOUNTER },
      ...context.clouds.map((cloud) => ({ label: `system $export, ${cloud.label}`, target: cloud, path: '/$export', cloud })),
      ...(analyzed
        ? [
            // _typeFilter costs: both filters keep every Observation, so the runs differ only in where they filter.
            { label: 'Observation, no filter', target: local, path: '/$export?_type=Observation' },
            { label: 'Observation, filter in SQL (_lastUpdated)', target: local, path: `/$export?_type=Observation&_typeFilter=${encodeURIComponent('Observation?_lastUpdated=ge2000-01-01')}` },
            { label: 'Observation, filter in worker (status)', target: local, path: `/$export?_type=Observation&_typeFilter=${encodeURIComponent('Observation?status=final')}` },
          ]
        : []),
    ];
    for (const run of runs.filter((r) => !context.only || context.only.some((text) => r.label.toLowerCase().includes(text)))) {
      const { exportId, ...figures } = await runExport(run.label, { ...store, temporalAddress: context.temporalAddress, env: run.target.env, output: run.target.output, path: run.path });
      results.push({ ...figures, limit: run.limit });
      if (run.cloud) {
        // The same bytes uploaded to the same server in parts of the same size with the provider's
        // own SDK, as many at once as the export runs partitions: what bulkflow's writes cost beyond.
        const cloud = run.cloud;
        const keys = await cloud.output.list(`${store.tenant}/${exportId}/`);
        const parts: Buffer[] = [];
        for (const key of keys) parts.push(Buffer.concat(await toArray((await cloud.output.openReader(key))!)));
        const uploadAll = async () => {
          let next = 0;
          const uploader = async () => {
            for (let i = next++; i < parts.length; i = next++) await cloud.upload(`baseline/${exportId}/${i}`, parts[i]);
          };
          await Promise.all(Array.from({ length: loadConfig().export.maxParallelPartitions }, uploader));
        };
        const seconds = await timed(uploadAll);
        const uploaded = { label: `${cloud.name} upload of the same parts (limit)`, resources: figures.resources, bytes: parts.reduce((n, b) => n + b.length, 0), seconds };
        results.splice(results.length - 1, 0, uploaded);
        results[results.length - 1].limit = uploaded.label;
        await cloud.output.deletePrefix(`baseline/${exportId}/`);
      }
      await run.target.output.deletePrefix(`${store.tenant}/${exportId}/`);
    }
  } finally {
    await pool.end();
  }
  return results;
}

type Target = { env: Record<string, string>; output: OutputStore };

/** A bucket backend to export to, with its server and its provider SDK's own upload (the baseline). */
interface CloudTarget extends Target {
  name: string;
  label: string;
  upload(key: string, bytes: Buffer): Promise<void>;
  stop(): Promise<void>;
}

async function startCloudTarget(name: string): Promise<CloudTarget> {
  if (name === 'gcs') {
    const gcs = await startGcsEmulator();
    const storage = new Storage({ apiEndpoint: gcs.endpoint, projectId: 'bench' });
    await storage.createBucket('bench-exports');
    return {
      name: 'GCS',
      label: 'GCS emulator',
      env: { OUTPUT_BACKEND: 'gcs', GCS_BUCKET: 'bench-exports', STORAGE_EMULATOR_HOST: gcs.endpoint },
      output: new GcsOutputStore(storage, 'bench-exports'),
      upload: async (key, bytes) => void (await storage.bucket('bench-exports').file(key).save(bytes, { resumable: false })),
      stop: () => gcs.stop(),
    };
  }
  if (name === 's3') {
    const server = await startS3Server();
    const client = new S3Client({ endpoint: server.endpoint, region: server.region, forcePathStyle: true, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
    await client.send(new CreateBucketCommand({ Bucket: 'bench-exports' }));
    return {
      name: 'S3',
      label: 'S3 (versitygw)',
      env: { OUTPUT_BACKEND: 's3', S3_BUCKET: 'bench-exports', S3_ENDPOINT: server.endpoint, S3_REGION: server.region, S3_FORCE_PATH_STYLE: 'true', AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey },
      output: new S3OutputStore(client, 'bench-exports'),
      // lib-storage's Upload, as the SDK's documentation recommends for files of any size (multipart above 5 MB).
      upload: async (key, bytes) => void (await new Upload({ client, params: { Bucket: 'bench-exports', Key: key, Body: bytes } }).done()),
      stop: () => server.stop(),
    };
  }
  if (name === 'azure') {
    const azurite = await startAzurite();
    const service = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const container = service.getContainerClient('bench-exports');
    await container.create();
    return {
      name: 'Azure',
      label: 'Azure Blob (Azurite)',
      env: { OUTPUT_BACKEND: 'azure', AZURE_STORAGE_CONTAINER: 'bench-exports', AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString },
      output: new AzureOutputStore(service, 'bench-exports'),
      upload: async (key, bytes) => void (await container.getBlockBlobClient(key).uploadData(bytes)),
      stop: () => azurite.stop(),
    };
  }
  throw new Error(`--output: unknown backend ${name} (gcs, s3, azure)`);
}

async function toArray(stream: NodeJS.ReadableStream): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return chunks;
}

/** One store's rows: resources/s, its ratio to the same store's system-level export, and to its limit (COPY, or the GCS upload). */
function printExportTable(store: string, results: Measured[]): void {
  const rate = (label: string) => {
    const r = results.find((x) => x.label === label);
    return r ? r.resources / r.seconds : NaN;
  };
  console.log('');
  console.log(`store: ${store}`);
  console.log(
    `${'case'.padEnd(42)} ${'resources'.padStart(10)} ${'MB'.padStart(7)} ${'seconds'.padStart(8)} ${'res/s'.padStart(9)} ${'MB/s'.padStart(7)} ${'vs system'.padStart(10)} ${'vs limit'.padStart(9)} ${'peak RSS'.padStart(9)}`,
  );
  for (const r of results) {
    const perSecond = r.resources / r.seconds;
    const limit = r.limit ?? COPY_ALL;
    const vsLimit = r.label === limit ? '' : `${(limit.includes(' upload ') ? r.bytes / r.seconds / byteRate(results, limit) : perSecond / rate(limit)).toFixed(2)}x`;
    console.log(
      `${r.label.padEnd(42)} ${String(r.resources).padStart(10)} ${(r.bytes / 1e6).toFixed(0).padStart(7)} ${r.seconds.toFixed(1).padStart(8)} ${perSecond.toFixed(0).padStart(9)} ${(r.bytes / 1e6 / r.seconds).toFixed(1).padStart(7)} ${(Number.isNaN(rate(SYSTEM)) ? '-' : `${(perSecond / rate(SYSTEM)).toFixed(2)}x`).padStart(10)} ${vsLimit.padStart(9)} ${r.peakRssMb === undefined ? '-'.padStart(9) : `${r.peakRssMb.toFixed(0)} MB`.padStart(9)}`,
    );
  }
}

const byteRate = (results: Measured[], label: string) => {
  const r = results.find((x) => x.label === label)!;
  return r.bytes / r.seconds;
};

/** Kicks off one export through the real API, run by a fresh worker process; measures time and the worker's peak RSS. */
async function runExport(
  label: string,
  options: { databaseUrl: string; tenant: string; temporalAddress: string; env: Record<string, string>; output: OutputStore; path: string },
) {
  return withBenchService(options, async ({ fhirBase, client, peakRssMb }) => {
    let manifest: { output: Array<{ count: number; url: string }> } | undefined;
    const seconds = await timed(async () => {
      const kick = await fetch(`${fhirBase}${options.path}`, { headers: { Accept: 'application/fhir+json', Prefer: 'respond-async' } });
      if (kick.status !== 202) throw new Error(`${options.path}: kick-off answered ${kick.status}: ${await kick.text()}`);
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
    const exportId = manifest!.output[0].url.split('/').slice(-2)[0];
    console.log(`  ${label}: ${await phases(client, exportId)}`);
    const resources = manifest!.output.reduce((n, o) => n + o.count, 0);
    const bytes = await storedBytes(options.output, `${options.tenant}/${exportId}/`);
    return { label, resources, bytes, seconds, peakRssMb: peakRssMb(), exportId };
  });
}

