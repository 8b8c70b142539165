/**
 * A lake schedule's runs under faults, as the chaos rounds run exports: two `bulkflow worker`
 * processes and one `bulkflow serve`, the store on a PostgreSQL cluster of the test's own, the
 * tables in GCS (the emulator, through a proxy that can refuse). Each round
 * changes Observations (creates, updates that change a resource's number of rows, deletes),
 * triggers an incremental run and strikes while it runs: the worker holding one of its
 * activities killed with SIGKILL; the API process killed and started again; PostgreSQL stopped as
 * a crash stops it and started 3 s later; GCS answering every request 503 for 5 s. The run
 * must complete, no staging or run folder a manifest does not list may be left, and the tables
 * (downloaded, read with DuckDB's Hive reader and applied run by run) must equal a one-off
 * `$sql-export` of the same views on the same data.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Storage } from '@google-cloud/storage';
import { DuckDBInstance } from '@duckdb/node-api';
import { createPool, ensureDatabase } from '../../src/store/database';
import { ResourceStore } from '../../src/store/resource-store';
import { testEnvironment } from '../harness/environment';
import { uniqueTenant } from '../support/database';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy';
import { applyRuns, multiset, readParquet, runManifests, type LakeManifestView } from '../support/lake-reader';
import { startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres';
import { FAULT_ROUNDS, FaultTable, Topology, until } from '../support/topology';

jest.setTimeout(240_000);

const KEY = 'lake_resource_key'; // the column the schedule adds to a view without one (docs/lake.md)
const flatView = {
  resourceType: 'ViewDefinition',
  name: 'obs_flat',
  resource: 'Observation',
  status: 'active',
  select: [{ column: [{ name: 'id', path: 'getResourceKey()' }, { name: 'status', path: 'status' }, { name: 'value', path: 'value.ofType(Quantity).value', type: 'decimal' }] }],
};
const codingView = {
  resourceType: 'ViewDefinition',
  name: 'obs_codings',
  resource: 'Observation',
  status: 'active',
  select: [{ forEach: 'code.coding', column: [{ name: 'system', path: 'system' }, { name: 'code', path: 'code' }] }],
};
const codingViewKeyed = { ...codingView, select: [{ column: [{ name: KEY, path: 'getResourceKey()' }] }, ...codingView.select] };
const subject = (name: string, resource: unknown) => ({ name: 'subject', part: [{ name: 'name', valueString: name }, { name: 'subjectResource', resource }] });

interface RunView {
  exportId: string;
  workflowId: string;
  state: string;
  reason?: string;
  manifest?: LakeManifestView;
}

describe('lake schedule runs under faults', () => {
  let postgres: PrivatePostgres;
  let proxy: FaultProxy;
  let topology: Topology;
  let store: ResourceStore;
  let db: DuckDBInstance;
  const faults = new FaultTable();
  const storage = new Storage({ apiEndpoint: testEnvironment.gcsEndpoint, projectId: 'bulkflow-test' });
  const tenant = uniqueTenant('lake-faults');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-lake-faults-'));
  let written = 0;
  let changes = 0;

  const admin = (p = '') => `${topology.apis[0].fhir.replace(/\/fhir$/, '')}/admin/schedules${p}`;
  /** The schedule's read answer; a 503 (the API waiting on Temporal or the store in trouble) is retried. */
  const schedule = async (): Promise<{ runs: RunView[]; running: string[] }> => {
    for (;;) {
      const res = await fetch(admin('/lake')).catch(() => undefined);
      if (res?.status === 200) return (await res.json()) as { runs: RunView[]; running: string[] };
      if (res && res.status !== 503) throw new Error(`GET the schedule answered ${res.status}: ${await res.text()}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  };

  /** Creates, updates (to another number of codings and value) and deletes Observations of the population. */
  async function change(): Promise<void> {
    const { rows } = await store.pool.query<{ body: string }>(
      `SELECT body FROM resource_versions WHERE tenant = $1 AND resource_type = 'Observation' AND superseded_at IS NULL AND NOT deleted ORDER BY id LIMIT 40 OFFSET $2`,
      [tenant, (changes++ % 40) * 30],
    );
    const bodies = rows.map((r) => JSON.parse(r.body) as { id: string; subject: unknown; code?: { coding?: unknown[] } });
    const ops: Parameters<ResourceStore['write']>[0] = [];
    bodies.slice(0, 20).forEach((b, i) => ops.push({ op: 'put', resource: { ...b, resourceType: 'Observation', status: 'amended', valueQuantity: { value: changes * 100 + i }, code: { coding: (b.code?.coding ?? []).slice(0, i % 3) } } }));
    bodies.slice(20, 30).forEach((b) => ops.push({ op: 'delete', resourceType: 'Observation', id: b.id }));
    for (let i = 0; i < 10; i++) {
      written++;
      ops.push({ op: 'put', resource: { resourceType: 'Observation', id: `lake-new-${written}`, status: 'final', code: { coding: [{ system: 'http://loinc.org', code: `n-${written}` }] }, subject: bodies[0].subject, valueQuantity: { value: written } } as never });
    }
    await store.write(ops);
  }

  /** The newest run's export id so far (the API lists the newest ten). */
  const runCount = async () => (await schedule()).runs[0]?.exportId;

  /** The newest run once it is not the one before (its ledger record exists: it began). */
  async function newRun(before: string | undefined): Promise<RunView> {
    await until(async () => (await schedule()).runs[0]?.exportId !== before, 'the run to begin', 120_000);
    return (await schedule()).runs[0];
  }
  const trigger = () => topology.client.schedule.getHandle(`bulkflow.${tenant}.lake`).trigger();

  /** Whether an activity of the run or of its exports ran a second attempt (the fault held it up). */
  async function retried(run: RunView): Promise<boolean> {
    for (const id of [run.workflowId, `${run.exportId}-inc`, `${run.exportId}-full`]) {
      const events = (await topology.client.workflow.getHandle(id).fetchHistory().catch(() => ({ events: [] }))).events ?? [];
      if (events.some((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1)) return true;
    }
    return false;
  }

  /** Waits for the run's workflow to end and returns its record. */
  async function runEnded(exportId: string): Promise<RunView> {
    await until(async () => {
      const now = await schedule();
      return now.running.length === 0 && now.runs.find((r) => r.exportId === exportId)!.state !== 'running';
    }, 'the run to end', 180_000);
    const run = (await schedule()).runs.find((r) => r.exportId === exportId)!;
    // Recorded first, then its files moved and its manifest written: the workflow's end.
    await topology.client.workflow.getHandle(run.workflowId).result().catch(() => undefined);
    return run;
  }

  /** Downloads every object under `prefix` into `dir`, keeping the paths below the prefix. */
  async function download(prefix: string, dir: string): Promise<string[]> {
    const [files] = await storage.bucket(testEnvironment.gcsBucket).getFiles({ prefix });
    for (const file of files) {
      const local = path.join(dir, file.name.slice(prefix.length));
      mkdirSync(path.dirname(local), { recursive: true });
      await file.download({ destination: local });
    }
    return files.map((f) => f.name.slice(prefix.length));
  }

  /** The tables, applied run by run, against a one-off `$sql-export` now (nothing writes meanwhile); no half run left where a reader looks. */
  async function expectTablesExact(round: string): Promise<void> {
    const lakeDir = path.join(tmp, round, 'lake');
    const keys = await download(`${tenant}/lake/`, lakeDir);
    expect(keys.filter((k) => k.startsWith('_staging/'))).toEqual([]);
    const listed = new Set(runManifests(lakeDir).map((m) => m.run));
    const folders = new Set(keys.map((k) => /\/run=([^/]+)\//.exec(k)?.[1]).filter((r): r is string => !!r));
    expect([...folders].filter((f) => !listed.has(f))).toEqual([]);

    const kick = await fetch(`${topology.apis[0].fhir}/$sql-export`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json', Prefer: 'respond-async' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: '_format', valueCode: 'parquet' }, subject('obs_flat', flatView), subject('obs_codings', codingViewKeyed)] }),
    });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    await until(async () => (await fetch(statusUrl, { redirect: 'manual' })).status === 303, 'the one-off export');
    const exportId = statusUrl.split('/').pop()!;
    const oneOffDir = path.join(tmp, round, 'one-off');
    const files = await download(`${tenant}/${exportId}/`, oneOffDir);
    for (const [name, key] of [['obs_flat', 'id'], ['obs_codings', KEY]]) {
      const expected = await readParquet(db, files.filter((f) => f.startsWith(`${name}-`)).map((f) => path.join(oneOffDir, f)));
      expect(multiset(await applyRuns(db, lakeDir, name, key))).toEqual(multiset(expected));
    }
    await fetch(statusUrl, { method: 'DELETE' });
  }

  /**
   * One round: change, then `strike` (which starts the run: `trigger`) and the run completes, an
   * incremental run, with the tables exact; `mattered` shows the fault met the run.
   */
  async function round(fault: string, strike: () => Promise<void>, mattered: (run: RunView) => Promise<boolean>): Promise<void> {
    await faults.round(fault, async () => {
      await change();
      const before = await runCount();
      await strike();
      const run = await newRun(before);
      const ended = await runEnded(run.exportId);
      expect([ended.state, ended.reason]).toEqual(['completed', undefined]);
      expect(ended.manifest!.subjects.obs_flat.fullBecause).toBeUndefined(); // an incremental run
      expect(await mattered(ended)).toBe(true);
      await expectTablesExact(`${fault.replace(/\W+/g, '-')}-${written}`);
    });
  }

  /** A live worker holding an activity of the run or its incremental export now, and those activities; undefined once the run ended without one. */
  async function busyWorker(before: string | undefined) {
    const run = await newRun(before);
    for (;;) {
      for (const id of [`${run.exportId}-inc`, run.workflowId]) {
        const pending = (await topology.client.workflow.getHandle(id).describe().catch(() => undefined))?.raw.pendingActivities ?? [];
        for (const worker of topology.workers) {
          const held = pending.filter((a) => (String(a.state) === '2' || String(a.state).includes('STARTED')) && (a.lastWorkerIdentity ?? '').startsWith(`${worker.child.pid}@`));
          if (held.length > 0 && worker.child.exitCode === null) return { run, worker, workflowId: id, activityIds: held.map((a) => a.activityId ?? '') };
        }
      }
      if ((await schedule()).runs.find((r) => r.exportId === run.exportId)!.state !== 'running') return undefined;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  beforeAll(async () => {
    postgres = await startPrivatePostgres();
    const databaseUrl = `${postgres.serverUrl}/bulkflow`;
    await ensureDatabase(databaseUrl);
    proxy = await startFaultProxy(testEnvironment.gcsEndpoint, { unavailable: 0, reset: 0, slow: 0, slowMs: 0 });
    topology = new Topology({
      temporal: { address: testEnvironment.temporalAddress, namespace: testEnvironment.temporalNamespace },
      databaseUrl,
      tenant,
      patients: 25,
      env: {
        OUTPUT_BACKEND: 'gcs',
        GCS_BUCKET: testEnvironment.gcsBucket,
        STORAGE_EMULATOR_HOST: proxy.url, // every process, also those started again, through the proxy that can refuse
        GCS_REQUEST_TIMEOUT_MS: '1500',
        EXPORT_PARTITION_SIZE: '150',
        EXPORT_PART_MAX_RESOURCES: '60',
        EXPORT_PARALLELISM: '2',
        EXPORT_HEARTBEAT_TIMEOUT_SECONDS: '3',
      },
    });
    await topology.prepare();
    for (let i = 0; i < 2; i++) await topology.startWorker();
    await topology.startApi();
    store = new ResourceStore(createPool(databaseUrl, { max: 2 }), tenant);
    db = await DuckDBInstance.create(':memory:');
    const created = await fetch(admin(), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ id: 'lake', cron: '0 0 1 1 *', destination: 'lake', sqlExport: { resourceType: 'Parameters', parameter: [subject('obs_flat', flatView), subject('obs_codings', codingView)] } }),
    });
    expect(created.status).toBe(201);
    const before = await runCount();
    await trigger();
    const first = await runEnded((await newRun(before)).exportId);
    expect(first.state).toBe('completed');
  }, 180_000);
  afterAll(async () => {
    faults.print(`faults during lake schedule runs (each run completes, the tables exactly a one-off $sql-export); the GCS proxy: ${JSON.stringify(proxy?.counts)}`);
    await fetch(admin('/lake'), { method: 'DELETE' }).catch(() => undefined);
    await topology?.stop();
    await store?.pool.end();
    await proxy?.close();
    db?.closeSync();
    postgres?.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  beforeEach(() => topology.heal({ workers: 2, apis: 1 }), 120_000);

  it.each(FAULT_ROUNDS)('completes a run whose worker is killed with SIGKILL while it holds one of the run activities (round %i)', async () => {
    await faults.round('SIGKILL of the worker holding a run activity', async () => {
      // The victim holds an activity of the run when it dies, and that activity ran again. A run
      // can end between seeing it and the kill: then the round goes again (at most five times).
      let hit = false;
      for (let attempt = 0; attempt < 5 && !hit; attempt++) {
        await topology.heal({ workers: 2, apis: 1 });
        await change();
        const before = await runCount();
        await trigger();
        const victim = await busyWorker(before);
        if (!victim) continue;
        victim.worker.child.kill('SIGKILL');
        const ended = await runEnded(victim.run.exportId);
        expect([ended.state, ended.reason]).toEqual(['completed', undefined]);
        await expectTablesExact(`kill-${written}`);
        hit = await topology.ranAgain(`x/${victim.workflowId}`, victim.activityIds);
      }
      expect(hit).toBe(true);
    });
  });

  it.each(FAULT_ROUNDS)('completes a run started while the API process is down, the API started again (round %i)', async () => {
    await round(
      'SIGKILL of the API process, a run, the API started',
      async () => {
        topology.apis[0].proc.child.kill('SIGKILL');
        await trigger();
        await topology.startApi(0);
      },
      async () => true, // runs never go through the API: what is shown is that nothing waits for it
    );
  });

  it.each(FAULT_ROUNDS)('completes a run that meets PostgreSQL stopped as a crash stops it and started 3 s later (round %i)', async () => {
    await round(
      'PostgreSQL stopped with -m immediate, started 3 s later',
      async () => {
        postgres.crash();
        await trigger();
        // Meanwhile the API answers what needs the store 503, transient, with Retry-After: never a 500.
        const during = await fetch(admin('/lake'));
        expect([during.status, during.headers.get('retry-after'), ((await during.json()) as { issue: Array<{ code: string }> }).issue[0].code]).toEqual([503, '5', 'transient']);
        await new Promise((resolve) => setTimeout(resolve, 3000));
        postgres.start();
      },
      retried,
    );
  });

  it.each(FAULT_ROUNDS)('completes a run while GCS refuses every request for 5 s (round %i)', async () => {
    const before = proxy.counts.unavailable;
    await round(
      'GCS answering 503 to every request for 5 s',
      async () => {
        proxy.setRates({ unavailable: 1 });
        await trigger();
        await new Promise((resolve) => setTimeout(resolve, 5000));
        proxy.setRates({ unavailable: 0 });
      },
      async () => proxy.counts.unavailable > before,
    );
  });
});
