/**
 * The production topology on one machine: the Temporal server on PostgreSQL, two `bulkflow
 * serve` and three `bulkflow worker` processes on one store. A kick-off on one API process is
 * polled, downloaded and cancelled through the other; one export's partitions run on several
 * workers at once (read from the workflow history); a worker killed with SIGKILL mid-export
 * leaves every resource exactly once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { generatePopulation } from '../../src/generate/population';
import { findFreePort } from '../../src/process/free-port';
import { ResourceStore } from '../../src/store/resource-store';
import { startTemporalServer, type TemporalServer } from '../../src/temporal/temporal-server';
import { statusQuery } from '../../workflows/bulk-export';
import { testEnvironment } from '../harness/environment';
import { migratedPool, uniqueTenant } from '../support/database';
import { downloadAll, kickoffHeaders, pollUntilDone } from '../support/export-stack';

const cli = path.resolve(__dirname, '../../dist/src/cli.js');

interface Proc {
  child: ChildProcess;
  output: () => string;
}

describe('two API and three worker processes on the Temporal server', () => {
  let server: TemporalServer;
  let client: Client;
  let connection: Connection;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-topology-'));
  const tenant = uniqueTenant('topology');
  const expected = new Set<string>();
  const apis: { proc: Proc; fhir: string }[] = [];
  const workers: Proc[] = [];
  let baseEnv: Record<string, string>;

  const start = (command: string, env: Record<string, string>): Proc => {
    let output = '';
    const child = spawn(process.execPath, [cli, command], { env: { ...process.env, ...baseEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    return { child, output: () => output };
  };
  const until = async (check: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await Promise.resolve(check()).catch(() => false)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  const startWorker = async () => {
    const worker = start('worker', { PORT: String(await findFreePort()) });
    workers.push(worker);
    await until(() => worker.output().includes('worker polling'), `a worker to poll:\n${worker.output()}`);
    return worker;
  };

  beforeAll(async () => {
    server = await startTemporalServer({
      databaseServerUrl: testEnvironment.databaseUrl,
      databasePrefix: `bulkflow_topo_${process.pid}_${Date.now() % 100000}`,
      dataDir: path.join(dataDir, 'server'),
    });
    connection = await Connection.connect({ address: server.address });
    client = new Client({ connection, namespace: server.namespace });
    const pool = await migratedPool(2);
    const resources = [...generatePopulation({ patients: 60, seed: 61 })];
    for (let i = 0; i < resources.length; i += 2000) {
      for (const r of await new ResourceStore(pool, tenant).write(resources.slice(i, i + 2000).map((resource) => ({ op: 'put' as const, resource })))) {
        expected.add(`${r.resourceType}/${r.id}/${r.versionId}`);
      }
    }
    await pool.end();
    baseEnv = {
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_TASK_QUEUE: `topology-${process.pid}`,
      DATABASE_URL: testEnvironment.databaseUrl,
      HOST: '127.0.0.1',
      OUTPUT_DIR: path.join(dataDir, 'output'), // shared by every process, as a shared volume or bucket is
      LOG_LEVEL: 'info',
      STATUS_POLL_TOLERANCE_MS: '120000', // the test polls faster than Retry-After
      EXPORT_PARTITION_SIZE: '500',
      EXPORT_PART_MAX_RESOURCES: '200',
      EXPORT_PARALLELISM: '6',
      EXPORT_HEARTBEAT_TIMEOUT_SECONDS: '3',
    };
    for (let i = 0; i < 3; i++) await startWorker();
    for (let i = 0; i < 2; i++) {
      const port = await findFreePort();
      const proc = start('serve', { PORT: String(port), BASE_URL: `http://127.0.0.1:${port}` });
      const fhir = `http://127.0.0.1:${port}/t/${tenant}/fhir`;
      await until(async () => (await fetch(`${fhir}/metadata`)).status === 200, `an API to answer:\n${proc.output()}`);
      apis.push({ proc, fhir });
    }
  }, 180_000);
  afterAll(async () => {
    for (const p of [...apis.map((a) => a.proc), ...workers]) p.child.kill('SIGKILL');
    await connection?.close();
    await server?.stop();
    await server?.dropDatabases();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** The status URL as the other API process serves it. */
  const onOtherApi = (statusUrl: string) => statusUrl.replace(apis[0].fhir, apis[1].fhir);

  it('kicks off on one API, polls and downloads through the other, partitions spread over the workers', async () => {
    const kick = await fetch(`${apis[0].fhir}/$export`, { headers: kickoffHeaders });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    expect(statusUrl.startsWith(apis[0].fhir)).toBe(true);
    const { manifest } = await pollUntilDone(onOtherApi(statusUrl), 120_000);
    const { keys } = await downloadAll({ ...manifest, output: manifest.output.map((o) => ({ ...o, url: onOtherApi(o.url) })) });
    expect(keys.length).toBe(expected.size);
    expect(new Set(keys)).toEqual(expected);

    // From the history: which worker started each partition, and that several ran at once.
    const history = await client.workflow.getHandle(statusUrl.split('/').pop()!).fetchHistory();
    const events = history.events ?? [];
    const partitions = new Set(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'exportPartition').map((e) => String(e.eventId)));
    const startedBy = events.filter((e) => e.activityTaskStartedEventAttributes && partitions.has(String(e.activityTaskStartedEventAttributes.scheduledEventId))).map((e) => e.activityTaskStartedEventAttributes!.identity);
    expect(startedBy.length).toBe(partitions.size);
    expect(new Set(startedBy).size).toBeGreaterThanOrEqual(2);
  });

  it('cancels through the other API process: 202, then 404 on both', async () => {
    const kick = await fetch(`${apis[1].fhir}/$export`, { headers: kickoffHeaders });
    const statusUrl = kick.headers.get('content-location')!;
    const other = statusUrl.replace(apis[1].fhir, apis[0].fhir);
    expect((await fetch(other, { method: 'DELETE' })).status).toBe(202);
    expect((await fetch(other)).status).toBe(404);
    expect((await fetch(statusUrl)).status).toBe(404);
  });

  /** Kicks off an export on `api` and returns its status URL once some, not all, partitions are done. */
  const kickOffPartWay = async (api: (typeof apis)[number]) => {
    const kick = await fetch(`${api.fhir}/$export`, { headers: kickoffHeaders });
    const statusUrl = kick.headers.get('content-location')!;
    const handle = client.workflow.getHandle(statusUrl.split('/').pop()!);
    await until(async () => {
      const status = await handle.query(statusQuery);
      return status.partitionsDone >= 1 && status.partitionsDone < status.partitionsTotal;
    }, 'the export to be part way', 60_000);
    return statusUrl;
  };
  /** The export completes with the store's (type, id, versionId) set, each once. */
  const expectExactlyOnce = async (statusUrl: string) => {
    const { manifest } = await pollUntilDone(statusUrl, 180_000);
    const { keys } = await downloadAll(manifest);
    expect(keys.length).toBe(expected.size);
    expect(new Set(keys)).toEqual(expected);
  };

  it('ends with every resource exactly once when one of three workers is killed with SIGKILL mid-export', async () => {
    const statusUrl = await kickOffPartWay(apis[0]);
    workers[0].child.kill('SIGKILL');
    await expectExactlyOnce(onOtherApi(statusUrl));
  });

  it('ends with every resource exactly once when all three workers are killed mid-export and started again', async () => {
    const statusUrl = await kickOffPartWay(apis[1]);
    for (const worker of workers) worker.child.kill('SIGKILL');
    for (let i = 0; i < 3; i++) await startWorker();
    await expectExactlyOnce(statusUrl);
  });

  it('keeps every 202 of a burst real when the API process that answered is killed with SIGKILL in the middle', async () => {
    // A kick-off answers 202 only after Temporal accepted the export's workflow, so every 202 a
    // client received names a real export. A request whose answer was lost may still have started
    // one: that export runs unseen until it expires (accepted requests are never lost; unanswered
    // ones are at most once).
    const answers = Array.from({ length: 20 }, () =>
      fetch(`${apis[0].fhir}/$export?_type=Patient`, { headers: kickoffHeaders }).then(
        (res) => (res.status === 202 ? res.headers.get('content-location')! : `status ${res.status}`),
        () => undefined, // the connection died with the process
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 150));
    apis[0].proc.child.kill('SIGKILL');
    const received = (await Promise.all(answers)).filter((a): a is string => a !== undefined && !a.startsWith('status'));
    expect(received.length).toBeGreaterThan(0);
    for (const statusUrl of received) {
      const status = await fetch(onOtherApi(statusUrl));
      expect([200, 202]).toContain(status.status); // known to the other API process: a real export
      await status.arrayBuffer();
    }
  });
});
