/**
 * bulkflow on the Temporal server itself (not the dev server): the launcher creates and migrates
 * its PostgreSQL persistence and SQL visibility databases with the server's schema tool, starts
 * it, registers the namespace and bulkflow's search attributes; `bulkflow serve` and `bulkflow
 * worker` processes then export through it, every resource exactly once, also when the server
 * is restarted in the middle of an export.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection, Client } from '@temporalio/client';
import { generatePopulation } from '../../src/generate/population';
import { findFreePort } from '../../src/process/free-port';
import { ResourceStore } from '../../src/store/resource-store';
import { startTemporalServer, type TemporalServer } from '../../src/temporal/temporal-server';
import { exportSearchAttributeKeys } from '../../src/temporal/search-attribute-registry';
import { statusQuery } from '../../workflows/bulk-export';
import { encryptingDataConverter } from '../../src/temporal/data-converter';
import { loadPayloadKeys } from '../../src/temporal/payload-keys';
import type { PayloadKey } from '../../src/temporal/payload-codec';
import { testEnvironment } from '../harness/environment';
import { migratedPool, uniqueTenant } from '../support/database';
import { downloadAll, kickoffHeaders, pollUntilDone } from '../support/export-stack';

const cli = path.resolve(__dirname, '../../dist/src/cli.js');

describe('bulkflow on the Temporal server (PostgreSQL persistence and SQL visibility)', () => {
  let server: TemporalServer;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-temporal-server-'));
  const outputDir = path.join(dataDir, 'output');
  const tenant = uniqueTenant('tserver');
  const processes: ChildProcess[] = [];
  const expected = new Set<string>();
  let fhir: string;
  let payloadKeys: PayloadKey[];

  const start = (command: string, env: Record<string, string>) => {
    let output = '';
    const child = spawn(process.execPath, [cli, command], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    processes.push(child);
    return { child, output: () => output };
  };
  const until = async (check: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await Promise.resolve(check()).catch(() => false)) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  beforeAll(async () => {
    const serverUrl = new URL(testEnvironment.databaseUrl);
    server = await startTemporalServer({
      databaseServerUrl: serverUrl.toString(),
      databasePrefix: `bulkflow_tsrv_${process.pid}_${Date.now() % 100000}`,
      dataDir: path.join(dataDir, 'server'),
    });
    const pool = await migratedPool(2);
    const resources = [...generatePopulation({ patients: 40, seed: 77 })];
    for (const r of await new ResourceStore(pool, tenant).write(resources.map((resource) => ({ op: 'put' as const, resource })))) {
      expected.add(`${r.resourceType}/${r.id}/${r.versionId}`);
    }
    payloadKeys = await loadPayloadKeys(pool, undefined);
    await pool.end();
    const port = await findFreePort();
    const env = {
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_TASK_QUEUE: `tserver-${process.pid}`,
      DATABASE_URL: testEnvironment.databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      BASE_URL: `http://127.0.0.1:${port}`,
      OUTPUT_DIR: outputDir,
      LOG_LEVEL: 'info',
      STATUS_POLL_TOLERANCE_MS: '120000', // the test polls faster than Retry-After
      EXPORT_PARTITION_SIZE: '1000',
      EXPORT_PARALLELISM: '1',
      EXPORT_HEARTBEAT_TIMEOUT_SECONDS: '5',
    };
    const worker = start('worker', env);
    const serve = start('serve', env);
    await until(() => worker.output().includes('worker polling'), `the worker to poll:\n${worker.output()}`);
    fhir = `http://127.0.0.1:${port}/t/${tenant}/fhir`;
    await until(async () => (await fetch(`${fhir}/metadata`)).status === 200, `the API to answer:\n${serve.output()}`);
  });
  afterAll(async () => {
    for (const child of processes) child.kill('SIGKILL');
    await server?.stop();
    await server?.dropDatabases();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('has bulkflow\'s search attributes registered by the launcher', async () => {
    const connection = await Connection.connect({ address: server.address });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: server.namespace });
      for (const key of exportSearchAttributeKeys) expect(Object.keys(customAttributes ?? {})).toContain(key.name);
    } finally {
      await connection.close();
    }
  });

  it('exports every resource exactly once, and again when the server restarts mid-export', async () => {
    const first = await fetch(`${fhir}/$export`, { headers: kickoffHeaders });
    expect(first.status).toBe(202);
    const { manifest } = await pollUntilDone(first.headers.get('content-location')!, 120_000);
    const { keys } = await downloadAll(manifest);
    expect(keys.length).toBe(expected.size);
    expect(new Set(keys)).toEqual(expected);

    const second = await fetch(`${fhir}/$export`, { headers: kickoffHeaders });
    expect(second.status).toBe(202);
    const statusUrl = second.headers.get('content-location')!;
    const connection = await Connection.connect({ address: server.address });
    // The worker processes encrypt with the store's payload key: this client reads with the same.
    const client = new Client({ connection, namespace: server.namespace, dataConverter: encryptingDataConverter(payloadKeys) });
    const handle = client.workflow.getHandle(statusUrl.split('/').pop()!);
    await until(async () => {
      const status = await handle.query(statusQuery);
      return status.partitionsDone >= 1 && status.partitionsDone < status.partitionsTotal;
    }, 'the export to be part way');
    await connection.close();
    await server.restart();
    const after = await pollUntilDone(statusUrl, 180_000);
    const again = await downloadAll(after.manifest);
    expect(again.keys.length).toBe(expected.size);
    expect(new Set(again.keys)).toEqual(expected);
  });
});
