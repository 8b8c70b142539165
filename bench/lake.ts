/**
 * `npm run bench -- lake`: a schedule of the flat Observation view into a lake, over the kept
 * 1M-resource bench store, by a fresh worker process through the real API, in `--repeat=N`
 * rounds (default 3). Each round: a one-off `$sql-export` of the view to Parquet (the baseline)
 * and the schedule's first run (full: the whole table), in turn first (a fresh worker's first
 * export is slower); then 1% of the Observations updated and an
 * incremental run; then a run with nothing changed (the fixed cost of a run). Printed: seconds,
 * rows, the one-off's time over the full run's (target at least 0.9x), the incremental run's time
 * as a share of the full run's (target at most 5% plus the fixed cost), and the worker's peak RSS.
 * A run's time is its workflow's, from its start to its end (its files moved, its manifest
 * written). The updates stay in the kept store (each round adds 1% of the Observations as new
 * versions).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { LocalOutputStore } from '../src/output/local-output-store';
import { createPool } from '../src/store/database';
import { ResourceStore } from '../src/store/resource-store';
import type { FhirResourceJson } from '../src/fhir/resource-validation';
import { startDevServer } from '../src/temporal/dev-server';
import { keptStore } from './export';
import { eventSeconds } from './history';
import { exportSeconds, sqlExportDone, withBenchService } from './service';
import { FLAT_OBSERVATION_VIEW } from './views';

interface Round {
  oneOff: { seconds: number; rows: number };
  full: { seconds: number; rows: number };
  incremental: { seconds: number; rows: number; deleted: number; changed: number };
  unchanged: { seconds: number };
  peakRssMb: number;
}

interface RunRecord {
  workflowId: string;
  state: string;
  manifest?: { subjects: Record<string, { rows: number; deleted?: { rows: number } }> };
}

export async function benchLake(args: string[]): Promise<void> {
  const target = Number(args.find((a) => a.startsWith('--resources='))?.split('=')[1] ?? '1000000');
  const repeat = Number(args.find((a) => a.startsWith('--repeat='))?.split('=')[1] ?? '3');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-bench-lake-'));
  const devServer = await startDevServer({ headless: true });
  const store = await keptStore(target);
  const outputDir = path.join(tmp, 'local');
  const output = new LocalOutputStore(outputDir);
  const service = { databaseUrl: store.databaseUrl, tenant: store.tenant, temporalAddress: devServer.address, env: { OUTPUT_BACKEND: 'local', OUTPUT_DIR: outputDir }, output };
  const rounds: Round[] = [];
  try {
    for (let i = 0; i < repeat; i++) {
      rounds.push(
        await withBenchService(service, async ({ fhirBase, client, peakRssMb }) => {
          // The first export of a fresh worker pays its warm-up: odd rounds give it to the one-off, even rounds to the full run.
          const oneOffFirst = i % 2 === 0;
          let oneOff = oneOffFirst ? await oneOffExport(fhirBase, client) : undefined;
          await output.deletePrefix(`${store.tenant}/`);
          const admin = `${fhirBase.replace(/\/fhir$/, '')}/admin/schedules`;
          const id = `bench-lake-${Date.now()}`;
          const created = await fetch(admin, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({
              id,
              cron: '0 0 1 1 *',
              destination: `lake/${id}`,
              sqlExport: { resourceType: 'Parameters', parameter: [{ name: 'subject', part: [{ name: 'name', valueString: 'observations' }, { name: 'subjectResource', resource: FLAT_OBSERVATION_VIEW }] }] },
            }),
          });
          if (created.status !== 201) throw new Error(`creating the schedule answered ${created.status}: ${await created.text()}`);
          try {
            const full = await timedRun(admin, id, client);
            oneOff ??= await oneOffExport(fhirBase, client);
            const changed = await updateObservations(store.databaseUrl, store.tenant, 0.01);
            const incremental = await timedRun(admin, id, client);
            const unchanged = await timedRun(admin, id, client);
            console.log(`  round ${i + 1}: one-off ${oneOff.seconds.toFixed(1)} s, full run ${full.seconds.toFixed(1)} s, ${changed} updated, incremental ${incremental.seconds.toFixed(1)} s (${incremental.rows} rows, ${incremental.deleted} keys dropped), unchanged ${unchanged.seconds.toFixed(1)} s`);
            return { oneOff, full, incremental: { ...incremental, changed }, unchanged, peakRssMb: peakRssMb() };
          } finally {
            await fetch(`${admin}/${id}`, { method: 'DELETE' });
            await output.deletePrefix(`${store.tenant}/`);
          }
        }),
      );
    }
  } finally {
    await devServer.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const r = (pick: (round: Round) => number) => median(rounds.map(pick));
  console.log('');
  console.log(`store: ${store.label}; the flat Observation view (7 columns) to Parquet; the median of ${repeat} rounds, the highest peak RSS`);
  console.log(`${'case'.padEnd(52)} ${'rows'.padStart(9)} ${'seconds'.padStart(8)} ${'ratio'.padStart(8)}`);
  const line = (label: string, rows: number | string, seconds: number, ratio: string) => console.log(`${label.padEnd(52)} ${String(rows).padStart(9)} ${seconds.toFixed(2).padStart(8)} ${ratio.padStart(8)}`);
  line('one-off $sql-export (the baseline)', r((x) => x.oneOff.rows), r((x) => x.oneOff.seconds), '');
  line('first run of the schedule (full)', r((x) => x.full.rows), r((x) => x.full.seconds), `${r((x) => x.oneOff.seconds / x.full.seconds).toFixed(2)}x`);
  line(`incremental run after 1% updated (${r((x) => x.incremental.changed)} resources)`, r((x) => x.incremental.rows), r((x) => x.incremental.seconds), `${(r((x) => x.incremental.seconds / x.full.seconds) * 100).toFixed(1)}%`);
  line('a run with nothing changed (the fixed cost)', 0, r((x) => x.unchanged.seconds), `${(r((x) => x.unchanged.seconds / x.full.seconds) * 100).toFixed(1)}%`);
  console.log(`worker peak RSS: ${Math.max(...rounds.map((x) => x.peakRssMb)).toFixed(0)} MB; ratio: the one-off's seconds over the full run's (target >= 0.9x); % of the full run's seconds (target: incremental <= 5% plus the fixed cost)`);
}

async function oneOffExport(fhirBase: string, client: Client): Promise<{ seconds: number; rows: number }> {
  const exportId = await sqlExportDone(fhirBase, [{ name: 'subject', part: [{ name: 'name', valueString: 'observations' }, { name: 'subjectResource', resource: FLAT_OBSERVATION_VIEW }] }, { name: '_format', valueCode: 'parquet' }]);
  const status = await client.workflow.getHandle(exportId).query<{ views: Record<string, { rows: number }> }>('viewExportStatus');
  const seconds = await exportSeconds(client, exportId);
  await client.workflow.getHandle(exportId).cancel(); // its files go
  return { seconds, rows: status.views.observations.rows };
}

/** Triggers a run, waits for its workflow to end, and times it from its history. */
async function timedRun(admin: string, id: string, client: Client): Promise<{ seconds: number; rows: number; deleted: number }> {
  const runs = async () => ((await (await fetch(`${admin}/${id}`)).json()) as { runs: RunRecord[]; running: string[] });
  const before = (await runs()).runs.length;
  const triggered = await fetch(`${admin}/${id}/trigger`, { method: 'POST' });
  if (triggered.status !== 202) throw new Error(`trigger answered ${triggered.status}: ${await triggered.text()}`);
  for (;;) {
    const now = await runs();
    if (now.runs.length > before && now.runs[0].state !== 'running' && now.running.length === 0) {
      const run = now.runs[0];
      if (run.state !== 'completed') throw new Error(`the run ended ${run.state}`);
      const events = (await client.workflow.getHandle(run.workflowId).fetchHistory()).events ?? [];
      const subject = run.manifest!.subjects.observations;
      return { seconds: eventSeconds(events.at(-1)!.eventTime) - eventSeconds(events[0].eventTime), rows: subject.rows, deleted: subject.deleted?.rows ?? 0 };
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Updates a random `share` of the current Observations (a new version each, one value changed); how many. */
async function updateObservations(databaseUrl: string, tenant: string, share: number): Promise<number> {
  const pool = createPool(databaseUrl, { max: 2 });
  try {
    const { rows } = await pool.query<{ body: string }>(
      `SELECT body FROM resource_versions WHERE tenant = $1 AND resource_type = 'Observation' AND superseded_at IS NULL AND NOT deleted AND random() < $2`,
      [tenant, share],
    );
    const store = new ResourceStore(pool, tenant);
    for (let i = 0; i < rows.length; i += 1000) {
      await store.write(
        rows.slice(i, i + 1000).map(({ body }) => {
          const resource = JSON.parse(body) as FhirResourceJson;
          return { op: 'put' as const, resource: { ...resource, status: resource.status === 'final' ? 'amended' : 'final' } };
        }),
      );
    }
    return rows.length;
  } finally {
    await pool.end();
  }
}
