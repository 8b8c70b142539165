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
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import os from 'node:os';
import path from 'node:path';
import { LocalOutputStore } from '../src/output/local-output-store';
import { createPool } from '../src/store/database';
import { startDevServer } from '../src/temporal/dev-server';
import { keptStore } from './export';
import { phases } from './history';
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
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-bench-views-'));
  const devServer = await startDevServer({ headless: true });
  const store = await keptStore(target);
  const outputDir = path.join(tmp, 'local');
  const output = new LocalOutputStore(outputDir);
  const service = { databaseUrl: store.databaseUrl, tenant: store.tenant, temporalAddress: devServer.address, env: { OUTPUT_BACKEND: 'local', OUTPUT_DIR: outputDir }, output };
  const results: (Row & { ratio: number })[] = [];
  try {
    const pool = createPool(store.databaseUrl, { max: 1 });
    const { rows } = await pool.query<{ mid: Date }>(
      "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY last_updated) AS mid FROM resource_versions WHERE tenant = $1 AND resource_type = 'Observation' AND superseded_at IS NULL AND NOT deleted",
      [store.tenant],
    );
    await pool.end();
    const cases: (() => Promise<Row>)[] = [
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
    results.push(...cases.map((_, k) => medianOf(rounds.map((round) => ({ ...round[k], ratio: rate(round[k]) / rate(round[0]) })))));
  } finally {
    await devServer.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
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

async function viewExport(service: Service, format: string, since?: string): Promise<Row> {
  return withBenchService(service, async ({ fhirBase, client, peakRssMb }) => {
    const exportId = await sqlExportDone(fhirBase, [
      { name: 'subject', part: [{ name: 'name', valueString: 'observations' }, { name: 'subjectResource', resource: FLAT_OBSERVATION_VIEW }] },
      { name: '_format', valueCode: format },
      ...(since ? [{ name: '_since', valueInstant: since }] : []),
    ]);
    const seconds = await exportSeconds(client, exportId);
    const status = await client.workflow.getHandle(exportId).query<{ views: Record<string, { rows: number }> }>('viewExportStatus');
    const rows = status.views.observations.rows;
    const label = `$sql-export ${format}${since ? ', half the rows (_since)' : ''}`;
    console.log(`  ${label}: ${await phases(client, exportId)}`);
    const bytes = await storedBytes(service.output, `${service.tenant}/${exportId}/`);
    await service.output.deletePrefix(`${service.tenant}/${exportId}/`);
    return { label, rows, bytes, seconds, peakRssMb: peakRssMb() };
  });
}
