/**
 * `GET /metrics` of `bulkflow serve` and `bulkflow worker` (each on its METRICS_PORT), scraped
 * before and after a real export: the API's request counts and latency by route and status,
 * the exports it started by kind, level and tenant; the worker's activity runs and the
 * resources and bytes it exported, the Temporal SDK's own metrics beside them; the worker's
 * `/healthz` and `/readyz`; a lake schedule's runs, rows and bytes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findFreePort } from '../../src/process/free-port';
import { testEnvironment } from '../harness/environment';
import { uniqueTenant } from '../support/database';
import { downloadAll, kickoffHeaders, pollUntilDone } from '../support/export-stack';
import { scheduleAdmin } from '../support/schedule-admin';
import { Topology } from '../support/topology';

/** The value of the sample `name` whose labels include every one of `labels` (0 when absent). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const has = Object.entries(labels).every(([k, v]) => (match[2] ?? '').includes(`${k}="${v}"`));
    if (has) return Number(match[3]);
  }
  return 0;
}

describe('metrics of the API and the worker processes', () => {
  let topology: Topology;
  const outputDir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-metrics-'));
  const tenant = uniqueTenant('metrics');
  let apiMetrics: string;
  let workerMetrics: string;

  beforeAll(async () => {
    topology = new Topology({
      temporal: { address: testEnvironment.temporalAddress, namespace: testEnvironment.temporalNamespace },
      databaseUrl: testEnvironment.databaseUrl,
      tenant,
      patients: 5,
      env: { OUTPUT_DIR: outputDir, EXPORT_PART_MAX_RESOURCES: '100' },
    });
    await topology.prepare();
    const workerPort = await findFreePort();
    await topology.startWorker({ METRICS_PORT: String(workerPort) });
    workerMetrics = `http://127.0.0.1:${workerPort}`;
    const apiPort = await findFreePort();
    await topology.startApi(0, { METRICS_PORT: String(apiPort) });
    apiMetrics = `http://127.0.0.1:${apiPort}`;
  }, 120_000);
  afterAll(async () => {
    await topology?.stop();
    rmSync(outputDir, { recursive: true, force: true });
  });

  const scrape = async (base: string) => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return res.text();
  };

  it('moves with a real export on both processes', async () => {
    const apiBefore = await scrape(apiMetrics);
    const workerBefore = await scrape(workerMetrics);
    const kick = await fetch(`${topology.apis[0].fhir}/$export`, { headers: kickoffHeaders });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    const { manifest } = await pollUntilDone(statusUrl, 120_000);
    const { keys } = await downloadAll(manifest);
    const api = await scrape(apiMetrics);
    const worker = await scrape(workerMetrics);

    const kickoffs = { method: 'GET', route: '/fhir/$export', status: '202' };
    expect(sample(api, 'bulkflow_http_requests_total', kickoffs) - sample(apiBefore, 'bulkflow_http_requests_total', kickoffs)).toBe(1);
    expect(sample(api, 'bulkflow_exports_started_total', { kind: 'bulk', level: 'system', tenant })).toBe(1);
    // Polls: the status route by status (the 202s while running, the 200 with the manifest), its id never a label.
    expect(sample(api, 'bulkflow_http_requests_total', { route: '/fhir/bulkstatus/:id', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(api).not.toContain(statusUrl.split('/').pop()!);
    expect(sample(api, 'bulkflow_http_request_duration_seconds_count', { route: '/fhir/$export' })).toBeGreaterThanOrEqual(1);
    expect(sample(api, 'bulkflow_process_resident_memory_bytes')).toBeGreaterThan(0);

    expect(sample(worker, 'bulkflow_resources_exported_total', { kind: 'bulk' }) - sample(workerBefore, 'bulkflow_resources_exported_total', { kind: 'bulk' })).toBe(keys.length);
    expect(sample(worker, 'bulkflow_bytes_exported_total', { kind: 'bulk' })).toBeGreaterThan(sample(workerBefore, 'bulkflow_bytes_exported_total', { kind: 'bulk' }));
    expect(sample(worker, 'bulkflow_activity_runs_total', { activity: 'exportPartition', outcome: 'completed' })).toBeGreaterThanOrEqual(1);
    expect(sample(worker, 'bulkflow_exports_finished_total', { kind: 'bulk', level: 'system', tenant, outcome: 'completed' })).toBe(1);
    expect(sample(worker, 'bulkflow_activity_duration_seconds_count', { activity: 'planExport', outcome: 'completed' })).toBeGreaterThanOrEqual(1);
    // The Temporal SDK's own: task slots, activity latency (its names, its labels).
    expect(worker).toMatch(/^temporal_worker_task_slots_available\{/m);
    expect(worker).toMatch(/^temporal_activity_execution_latency(_seconds)?_count\{/m);
  });

  it('counts an export cancelled before it completed as cancelled, once', async () => {
    const kick = await fetch(`${topology.apis[0].fhir}/Patient/$export`, { headers: kickoffHeaders });
    expect(kick.status).toBe(202);
    expect((await fetch(kick.headers.get('content-location')!, { method: 'DELETE' })).status).toBe(202);
    const cancelled = { kind: 'bulk', level: 'patient', tenant, outcome: 'cancelled' };
    const deadline = Date.now() + 30_000;
    while (sample(await scrape(workerMetrics), 'bulkflow_exports_finished_total', cancelled) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const worker = await scrape(workerMetrics);
    expect(sample(worker, 'bulkflow_exports_finished_total', cancelled)).toBe(1);
    expect(sample(worker, 'bulkflow_exports_finished_total', { ...cancelled, outcome: 'completed' })).toBe(0);
  });

  it('counts a lake schedule\'s runs, rows and bytes by schedule', async () => {
    const admin = `${topology.apis[0].fhir.replace(/\/fhir$/, '')}/admin/schedules`;
    const view = { resourceType: 'ViewDefinition', name: 'obs', resource: 'Observation', status: 'active', select: [{ column: [{ name: 'id', path: 'getResourceKey()' }] }] };
    const created = await fetch(admin, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ id: 'metered', cron: '0 0 1 1 *', sqlExport: { resourceType: 'Parameters', parameter: [{ name: 'subject', part: [{ name: 'subjectResource', resource: view }] }] } }),
    });
    expect(created.status).toBe(201);
    await scheduleAdmin(admin).trigger('metered');
    const labels = { tenant, schedule: 'metered' };
    const deadline = Date.now() + 60_000;
    while (sample(await scrape(workerMetrics), 'bulkflow_lake_runs_total', { ...labels, outcome: 'completed' }) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const worker = await scrape(workerMetrics);
    const run = ((await (await fetch(`${admin}/metered`)).json()) as { runs: Array<{ manifest: { subjects: Record<string, { rows: number; bytes: number }> } }> }).runs[0];
    expect(sample(worker, 'bulkflow_lake_runs_total', { ...labels, outcome: 'completed' })).toBe(1);
    expect(run.manifest.subjects.obs.rows).toBeGreaterThan(0);
    expect(sample(worker, 'bulkflow_lake_rows_total', labels)).toBe(run.manifest.subjects.obs.rows);
    expect(sample(worker, 'bulkflow_lake_bytes_total', labels)).toBe(run.manifest.subjects.obs.bytes);
    await fetch(`${admin}/metered`, { method: 'DELETE' });
  });

  it('answers /healthz and /readyz on the worker\'s metrics port, and 404 elsewhere', async () => {
    expect((await fetch(`${workerMetrics}/healthz`)).status).toBe(200);
    const ready = await fetch(`${workerMetrics}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([200, 'ready\n']);
    expect((await fetch(`${workerMetrics}/nothing`)).status).toBe(404);
  });
});
