/**
 * `$bulk-submit` between two bulkflow instances on this machine, against `bulkflow import` of the
 * same files in the same run. The provider (the kept bench store, `--resources` of it) exports
 * once; its files stay served while the recipient (a fresh database, its own worker process)
 * pulls every file over HTTP and loads it; the baseline is the same files, already on local
 * disk, loaded by `bulkflow import` into another fresh database. Both loads start on an empty
 * store. Prints seconds, resources/s, the ratio, and the recipient worker's RSS against the
 * largest file.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pool } from 'pg';
import { LocalOutputStore } from '../src/output/local-output-store';
import { createPool } from '../src/store/database';
import { migrate } from '../src/store/migrate';
import { DEFAULT_TENANT } from '../src/store/resource-store';
import { startDevServer } from '../src/temporal/dev-server';
import type { Submitter } from '../src/bulk-submit/submitters';
import { submissionJobId } from '../src/http/routes/bulk-submit';
import { currentCount, keptStore } from './export';
import { exportSeconds, withBenchService } from './service';
import { benchDatabase, printTable, timed } from './support';

const RECIPIENT = 'bench-recipient';
const submitter = { system: 'https://bench.provider/ids', value: 'provider' };
const cli = path.resolve(__dirname, '..', 'src', 'cli.js');

export async function benchSubmit(args: string[]): Promise<void> {
  const target = Number(args.find((a) => a.startsWith('--resources='))?.split('=')[1] ?? '1000000');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-bench-submit-'));
  const devServer = await startDevServer({ headless: true });
  const provider = await keptStore(target);
  const providerOutput = path.join(tmp, 'provider');
  const recipientOutput = path.join(tmp, 'recipient');
  try {
    await withBenchService(
      { databaseUrl: provider.databaseUrl, tenant: provider.tenant, temporalAddress: devServer.address, env: { OUTPUT_DIR: providerOutput }, output: new LocalOutputStore(providerOutput) },
      async ({ fhirBase: providerBase, client: providerClient }) => {
        const manifestUrl = await exportOnce(providerBase);
        const exportId = manifestUrl.split('/').pop()!;
        const files = path.join(providerOutput, provider.tenant, exportId);
        const manifest = (await (await fetch(manifestUrl)).json()) as { output: Array<{ url: string; count: number }> };
        const resources = manifest.output.reduce((n, o) => n + o.count, 0);
        const largest = Math.max(...manifest.output.map((o) => statSync(path.join(files, o.url.split('/').pop()!)).size));
        console.log(`provider: exported ${resources} resources in ${manifest.output.length} files (largest ${(largest / 1e6).toFixed(1)} MB) in ${(await exportSeconds(providerClient, exportId)).toFixed(1)} s`);

        const rows: Array<[string, number, number]> = [];
        await benchDatabase('submit_import', async (databaseUrl) => {
          await migrated(databaseUrl, async () => undefined);
          const seconds = await timed(() => runImport(databaseUrl, files));
          await migrated(databaseUrl, async (pool) => expectCount(pool, DEFAULT_TENANT, resources, 'bulkflow import'));
          rows.push(['bulkflow import of the files (local disk)', resources, seconds]);
        });

        await benchDatabase('submit_recipient', async (databaseUrl) => {
          await migrated(databaseUrl, async () => undefined);
          const submitters: Submitter[] = [{ tenant: RECIPIENT, ...submitter, allowedUrls: [`${providerBase}/`] }];
          const submittersFile = path.join(tmp, 'submitters.json');
          writeFileSync(submittersFile, JSON.stringify({ submitters }));
          await withBenchService(
            {
              databaseUrl,
              tenant: RECIPIENT,
              temporalAddress: devServer.address,
              env: { OUTPUT_DIR: recipientOutput, BULK_SUBMITTERS_FILE: submittersFile },
              output: new LocalOutputStore(recipientOutput),
              bulkSubmit: { submitters, maxParallelFiles: Number(process.env.BULK_SUBMIT_PARALLEL_FILES ?? 4) },
            },
            async ({ fhirBase, client, peakRssMb, idleRssMb }) => {
              const wall = await timed(() => submitAndWait(fhirBase, manifestUrl, providerBase));
              const seconds = await exportSeconds(client, submissionJobId(RECIPIENT, submitter, 'bench'));
              console.log(`recipient: ${seconds.toFixed(1)} s from the submission's start to its last file loaded (${wall.toFixed(1)} s from the request to the complete status manifest); worker RSS ${idleRssMb.toFixed(0)} MB idle, ${peakRssMb().toFixed(0)} MB peak, largest file ${(largest / 1e6).toFixed(1)} MB`);
              rows.push(['$bulk-submit pulled over HTTP and loaded', resources, seconds]);
            },
          );
          await migrated(databaseUrl, async (pool) => expectCount(pool, RECIPIENT, resources, '$bulk-submit'));
        });
        printTable(rows, rows[0][1] / rows[0][2]);
        console.log(`\n$bulk-submit vs bulkflow import of the same files: ${((rows[0][2] / rows[1][2])).toFixed(2)}x (target >= 0.8x)`);
      },
    );
  } finally {
    await devServer.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function migrated(databaseUrl: string, work: (pool: Pool) => Promise<void>): Promise<void> {
  const pool = createPool(databaseUrl, { max: 2 });
  try {
    await migrate(pool);
    await work(pool);
  } finally {
    await pool.end();
  }
}

async function expectCount(pool: Pool, tenant: string, expected: number, what: string): Promise<void> {
  const count = await currentCount(pool, tenant);
  if (count !== expected) throw new Error(`${what} left ${count} resources, the export holds ${expected}`);
}

/** A system-level export of the provider; its status URL (its manifest once complete). */
async function exportOnce(fhirBase: string): Promise<string> {
  const kick = await fetch(`${fhirBase}/$export`, { headers: { Accept: 'application/fhir+json', Prefer: 'respond-async' } });
  if (kick.status !== 202) throw new Error(`$export answered ${kick.status}: ${await kick.text()}`);
  const statusUrl = kick.headers.get('content-location')!;
  for (let res = await fetch(statusUrl); res.status !== 200; res = await fetch(statusUrl)) {
    if (res.status !== 202) throw new Error(`status ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return statusUrl;
}

/** `bulkflow import <dir>` as a user runs it (into the default tenant). */
async function runImport(databaseUrl: string, dir: string): Promise<void> {
  const child = spawn(process.execPath, [cli, 'import', dir], { env: { MALLOC_ARENA_MAX: '2', ...process.env, DATABASE_URL: databaseUrl }, stdio: ['ignore', 'ignore', 'inherit'] });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`bulkflow import exited with ${code}`);
}

/** One complete submission of the manifest; resolves when the status manifest is served. */
async function submitAndWait(fhirBase: string, manifestUrl: string, providerBase: string): Promise<void> {
  const body = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'submitter', valueIdentifier: submitter },
      { name: 'submissionId', valueString: 'bench' },
      { name: 'submissionStatus', valueCoding: { system: 'http://hl7.org/fhir/event-status', code: 'completed' } },
      { name: 'manifestUrl', valueUrl: manifestUrl },
      { name: 'fhirBaseUrl', valueUrl: providerBase },
    ],
  };
  const res = await fetch(`${fhirBase}/$bulk-submit`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`$bulk-submit answered ${res.status}: ${await res.text()}`);
  const statusUrl = res.headers.get('content-location')!;
  for (;;) {
    const poll = await fetch(statusUrl);
    const text = await poll.text();
    if (poll.status === 200) return;
    if (poll.status !== 202) throw new Error(`submission status ${poll.status}: ${text}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
