/**
 * `npm run bench -- views`: a flat Observation view (id, patient key, code system and code,
 * value, unit, effective time) exported with `$sql-export` over the kept 1M-resource bench store
 * to local files in each format, against `$export?_type=Observation` in the same run, each by a
 * fresh worker process through the real API: rows/s, MB/s, the ratio to `$export`'s
 * resources/s, and the worker's peak RSS. A Parquet run over about half the rows (`_since`)
 * shows whether memory grows with the output. The cases run in `--repeat=N` rounds (default 3),
 * each case once a round, and each view run's ratio is to the `$export` run of its round; the
 * median time and ratio are printed, with the highest peak RSS of all runs. A run's time is its
 * workflow's, from its start to its last activity (the same measure for both operations, whatever
 * their poll intervals). `--formats=ndjson,csv` runs only those formats.
 *
 * And against the user's alternative (hand-made.ts): for the flat view and an 11-column view with
 * a forEach over code.coding, bulkflow's Parquet export against `$export _type=Observation` plus
 * DuckDB by hand to Parquet, the rows checked equal; seconds, rows/s, the ratio, and the peak RSS
 * of the worker, of the `$export` worker and of the DuckDB process. `--hand-made=only` runs only
 * that comparison, `--hand-made=no` leaves it out.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import os from 'node:os';
import path from 'node:path';
import { LocalOutputStore } from '../src/output/local-output-store';
import { createPool } from '../src/store/database';
import { startDevServer } from '../src/temporal/dev-server';
import { keptStore } from './export';
import { phases } from './history';
import { flattenByHand, rowsDiffering } from './hand-made';
import { exportSeconds, sqlExportDone, storedBytes, timedBulkExport, withBenchService } from './service';

export const FLAT_OBSERVATION_VIEW = {
  resourceType: 'ViewDefinition',
  name: 'observation_flat',
  resource: 'Observation',
  select: [
    {
      column: [
        { name: 'id', path: 'getResourceKey()', type: 'id' },
        { name: 'patient', path: 'subject.getReferenceKey(Patient)', type: 'string' },
        { name: 'system', path: 'code.coding.first().system', type: 'uri' },
        { name: 'code', path: 'code.coding.first().code', type: 'code' },
        { name: 'value', path: 'value.ofType(Quantity).value', type: 'decimal' },
        { name: 'unit', path: 'value.ofType(Quantity).unit', type: 'string' },
        { name: 'effective', path: 'effective.ofType(dateTime)', type: 'dateTime' },
      ],
    },
  ],
};

/** An Observation view with a forEach over code.coding and ofType choices: 11 columns, a row per coding. */
export const OBSERVATION_CODINGS_VIEW = {
  resourceType: 'ViewDefinition',
  name: 'observation_codings',
  resource: 'Observation',
  select: [
    {
      column: [
        { name: 'id', path: 'getResourceKey()', type: 'id' },
        { name: 'patient', path: 'subject.getReferenceKey(Patient)', type: 'string' },
        { name: 'status', path: 'status', type: 'code' },
        { name: 'effective', path: 'effective.ofType(dateTime)', type: 'dateTime' },
        { name: 'issued', path: 'issued', type: 'instant' },
        { name: 'value', path: 'value.ofType(Quantity).value', type: 'decimal' },
        { name: 'unit', path: 'value.ofType(Quantity).unit', type: 'string' },
        { name: 'category', path: 'category.first().coding.first().code', type: 'code' },
      ],
    },
    { forEach: 'code.coding', column: [{ name: 'system', path: 'system', type: 'uri' }, { name: 'code', path: 'code', type: 'code' }, { name: 'display', path: 'display', type: 'string' }] },
  ],
};

interface Row {
  label: string;
  rows: number;
  bytes: number;
  seconds: number;
  peakRssMb: number;
}

export async function benchViews(args: string[]): Promise<void> {
  const target = Number(args.find((a) => a.startsWith('--resources='))?.split('=')[1] ?? '1000000');
  const repeat = Number(args.find((a) => a.startsWith('--repeat='))?.split('=')[1] ?? '3');
  const formats = (args.find((a) => a.startsWith('--formats='))?.split('=')[1] ?? 'ndjson,csv,json,parquet').split(',');
  // `--hand-made=only`: only bulkflow against the user's alternative; `--hand-made=no`: without it.
  const handMade = args.find((a) => a.startsWith('--hand-made='))?.split('=')[1] ?? 'yes';
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-bench-views-'));
  const devServer = await startDevServer({ headless: true });
  const store = await keptStore(target);
  const outputDir = path.join(tmp, 'local');
  const output = new LocalOutputStore(outputDir);
  const service = { databaseUrl: store.databaseUrl, tenant: store.tenant, temporalAddress: devServer.address, env: { OUTPUT_BACKEND: 'local', OUTPUT_DIR: outputDir }, output };
  const results: (Row & { ratio: number })[] = [];
  let handMadeRows: HandMadeRun[][] | undefined;
  try {
    const pool = createPool(store.databaseUrl, { max: 1 });
    const { rows } = await pool.query<{ mid: Date }>(
      "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY last_updated) AS mid FROM resource_versions WHERE tenant = $1 AND resource_type = 'Observation' AND superseded_at IS NULL AND NOT deleted",
      [store.tenant],
    );
    await pool.end();
    if (handMade !== 'no') handMadeRows = await againstHandMade(service, outputDir, tmp, repeat);
    const cases: (() => Promise<Row>)[] = handMade === 'only' ? [] : [
      () => bulkExportOfObservations(service),
      ...formats.map((format) => () => viewExport(service, format)),
      ...(formats.includes('parquet') ? [() => viewExport(service, 'parquet', rows[0].mid.toISOString())] : []),
    ];
    // Round by round, each case once a round: this machine's speed drifts by half over minutes,
    // so every view run is compared with the $export run of its own round.
    const rounds: Row[][] = [];
    for (let i = 0; i < repeat; i++) {
      const round: Row[] = [];
      for (const run of cases) round.push(await run());
      rounds.push(round);
    }
    if (cases.length > 0) results.push(...cases.map((_, k) => medianOf(rounds.map((round) => ({ ...round[k], ratio: rate(round[k]) / rate(round[0]) })))));
  } finally {
    await devServer.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  if (handMadeRows) printHandMade(store.label, repeat, handMadeRows);
  if (results.length === 0) return;
  console.log('');
  console.log(`store: ${store.label}; a flat Observation view (7 columns) against $export of _type=Observation in the same round; the median of ${repeat} rounds, the highest peak RSS`);
  console.log(`${'case'.padEnd(44)} ${'rows'.padStart(9)} ${'MB'.padStart(6)} ${'seconds'.padStart(8)} ${'rows/s'.padStart(8)} ${'MB/s'.padStart(6)} ${'vs $export'.padStart(11)} ${'peak RSS'.padStart(9)}`);
  for (const r of results) {
    console.log(
      `${r.label.padEnd(44)} ${String(r.rows).padStart(9)} ${(r.bytes / 1e6).toFixed(0).padStart(6)} ${r.seconds.toFixed(1).padStart(8)} ${rate(r).toFixed(0).padStart(8)} ${(r.bytes / 1e6 / r.seconds).toFixed(1).padStart(6)} ${`${r.ratio.toFixed(2)}x`.padStart(11)} ${`${r.peakRssMb.toFixed(0)} MB`.padStart(9)}`,
    );
  }
}

const rate = (r: Row) => r.rows / r.seconds;

/** A case's runs summed up: the median time and ratio (each taken on its own), the highest peak RSS. */
function medianOf(runs: (Row & { ratio: number })[]): Row & { ratio: number } {
  const middle = <T>(values: T[], by: (v: T) => number) => [...values].sort((a, b) => by(a) - by(b))[Math.floor(values.length / 2)];
  return { ...middle(runs, (r) => r.seconds), ratio: middle(runs, (r) => r.ratio).ratio, peakRssMb: Math.max(...runs.map((r) => r.peakRssMb)) };
}

type Service = Parameters<typeof withBenchService>[0] & { output: LocalOutputStore };

/** The baseline: `$export?_type=Observation` (resources count as rows: the view gives one per Observation). */
async function bulkExportOfObservations(service: Service): Promise<Row> {
  const { resources, ...run } = await timedBulkExport(service, '/$export?_type=Observation');
  return { label: '$export _type=Observation (NDJSON)', rows: resources, ...run };
}

async function viewExport(service: Service, format: string, since?: string, view: Record<string, unknown> = FLAT_OBSERVATION_VIEW, withFiles?: (keys: string[]) => Promise<void>): Promise<Row> {
  return withBenchService(service, async ({ fhirBase, client, peakRssMb }) => {
    const exportId = await sqlExportDone(fhirBase, [
      { name: 'subject', part: [{ name: 'name', valueString: 'observations' }, { name: 'subjectResource', resource: view }] },
      { name: '_format', valueCode: format },
      ...(since ? [{ name: '_since', valueInstant: since }] : []),
    ]);
    const seconds = await exportSeconds(client, exportId);
    const status = await client.workflow.getHandle(exportId).query<{ views: Record<string, { rows: number }> }>('viewExportStatus');
    const rows = status.views.observations.rows;
    const label = `$sql-export ${format}${since ? ', half the rows (_since)' : ''}${view === FLAT_OBSERVATION_VIEW ? '' : ` (${String(view.name)})`}`;
    console.log(`  ${label}: ${await phases(client, exportId)}`);
    const bytes = await storedBytes(service.output, `${service.tenant}/${exportId}/`);
    await withFiles?.(await service.output.list(`${service.tenant}/${exportId}/`));
    await service.output.deletePrefix(`${service.tenant}/${exportId}/`);
    return { label, rows, bytes, seconds, peakRssMb: peakRssMb() };
  });
}

/** One round of one view: bulkflow's `$sql-export` to Parquet against `$export` plus DuckDB by hand. */
interface HandMadeRun {
  view: string;
  format: string;
  rows: number;
  bulkflow: Row;
  exported: Row;
  flatten: { seconds: number; rows: number; peakRssMb: number };
}

/**
 * Each round, for each view: bulkflow's Parquet export, then the alternative (`$export` of
 * Observation, DuckDB over its files in a process of its own); the first round checks that both
 * give the same rows, and a difference stops the bench.
 */
async function againstHandMade(service: Service, outputDir: string, tmp: string, repeat: number): Promise<HandMadeRun[][]> {
  const rounds: HandMadeRun[][] = [];
  for (let i = 0; i < repeat; i++) {
    const round: HandMadeRun[] = [];
    for (const [view, format] of [FLAT_OBSERVATION_VIEW, OBSERVATION_CODINGS_VIEW].flatMap((v) => ['parquet', 'ndjson'].map((f) => [v, f] as const))) {
      const ours: string[] = [];
      const bulkflow = await viewExport(service, format, undefined, view, async (keys) => {
        for (const key of keys) {
          const copy = path.join(tmp, `${view.name}-ours-${i}-${path.basename(key)}`);
          copyFileSync(path.join(outputDir, key), copy);
          ours.push(copy);
        }
      });
      const theirs = path.join(tmp, `${view.name}-theirs-${i}.${format}`);
      let flatten: HandMadeRun['flatten'] | undefined;
      const { resources, ...exportRun } = await timedBulkExport(service, '/$export?_type=Observation', async (prefix) => {
        flatten = await flattenByHand(view.name, path.join(outputDir, prefix), theirs);
      });
      if (i === 0) {
        const columns = view.select.flatMap((s) => s.column.map((c) => c.name));
        const differing = await rowsDiffering(ours, theirs, columns);
        if (differing !== 0 || flatten!.rows !== bulkflow.rows) throw new Error(`${view.name} ${format}: the hand-made rows differ from bulkflow's (${differing} rows in one and not the other; ${flatten!.rows} against ${bulkflow.rows})`);
        console.log(`  ${view.name} ${format}: the hand-made rows equal bulkflow's (${bulkflow.rows} rows)`);
      }
      round.push({ view: view.name, format, rows: bulkflow.rows, bulkflow, exported: { label: '$export', rows: resources, ...exportRun }, flatten: flatten! });
      for (const file of [...ours, theirs]) rmSync(file, { force: true });
    }
    rounds.push(round);
  }
  return rounds;
}

function printHandMade(label: string, repeat: number, rounds: HandMadeRun[][]): void {
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  console.log('');
  console.log(`store: ${label}; $sql-export against the user's alternative ($export _type=Observation, then DuckDB by hand to the same format, two threads), same rows checked; the median of ${repeat} rounds, the highest peak RSS`);
  console.log(`${'view, format'.padEnd(30)} ${'rows'.padStart(9)} ${'bulkflow s'.padStart(11)} ${'rows/s'.padStart(8)} ${'$export s'.padStart(10)} ${'DuckDB s'.padStart(9)} ${'alt. s'.padStart(7)} ${'rows/s'.padStart(8)} ${'bulkflow/alt.'.padStart(14)} ${'RSS: worker'.padStart(12)} ${'export worker'.padStart(14)} ${'DuckDB'.padStart(8)}`);
  rounds[0].forEach((first, k) => {
    const runs = rounds.map((round) => round[k]);
    const ours = median(runs.map((r) => r.bulkflow.seconds));
    const exported = median(runs.map((r) => r.exported.seconds));
    const flattened = median(runs.map((r) => r.flatten.seconds));
    const theirs = median(runs.map((r) => r.exported.seconds + r.flatten.seconds));
    const ratio = median(runs.map((r) => (r.exported.seconds + r.flatten.seconds) / r.bulkflow.seconds));
    const peak = (pick: (r: HandMadeRun) => number) => `${Math.max(...runs.map(pick)).toFixed(0)} MB`;
    console.log(
      `${`${first.view}, ${first.format}`.padEnd(30)} ${String(first.rows).padStart(9)} ${ours.toFixed(1).padStart(11)} ${(first.rows / ours).toFixed(0).padStart(8)} ${exported.toFixed(1).padStart(10)} ${flattened.toFixed(1).padStart(9)} ${theirs.toFixed(1).padStart(7)} ${(first.rows / theirs).toFixed(0).padStart(8)} ${`${ratio.toFixed(2)}x`.padStart(14)} ${peak((r) => r.bulkflow.peakRssMb).padStart(12)} ${peak((r) => r.exported.peakRssMb).padStart(14)} ${peak((r) => r.flatten.peakRssMb).padStart(8)}`,
    );
  });
}
