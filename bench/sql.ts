/**
 * `npm run bench -- sql`: SQL over views on the kept 1M-resource bench store, each case a
 * `$sql-export` by a fresh worker process through the real API, in one round:
 * - the flat Observation view alone (the baseline: what producing the SQL's main input costs);
 * - a SQLQuery joining it with a Patient view, counting per gender and code (an aggregate);
 * - a SQLQuery giving every Observation row with its patient's birth date (a large result).
 * Per case: seconds, rows/s, the time split of a SQL subject (making its tables, the SQL, writing
 * its rows), the worst event-loop delay in the worker meanwhile, the worker's idle and peak RSS,
 * and the ratio to the view's time in the same round. `--repeat=N` rounds (default 3; the
 * median time and ratio, the highest peak RSS); `--format=parquet` (default) or another.
 * Targets: the aggregate at most 1.25x the view, the large result at most 1.6x; peak RSS within
 * the engine's memory limit plus the idle worker plus 150 MB.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config';
import type { SqlSubjectTimings } from '../src/contracts/view-export';
import { LocalOutputStore } from '../src/output/local-output-store';
import { startDevServer } from '../src/temporal/dev-server';
import { keptStore } from './export';
import { phases } from './history';
import { exportSeconds, sqlExportDone, withBenchService } from './service';
import { FLAT_OBSERVATION_VIEW } from './views';

const SQL_ON_FHIR_TYPES = 'http://hl7.org/fhir/uv/sql-on-fhir/CodeSystem/LibraryTypesCodes';
const OBSERVATIONS = { ...FLAT_OBSERVATION_VIEW, url: 'https://bulkflow.example/bench/observation_flat' };
const PATIENTS = {
  resourceType: 'ViewDefinition',
  url: 'https://bulkflow.example/bench/patients',
  name: 'patients',
  resource: 'Patient',
  select: [{ column: [{ name: 'id', path: 'getResourceKey()', type: 'id' }, { name: 'gender', path: 'gender', type: 'code' }, { name: 'birth_date', path: 'birthDate', type: 'date' }] }],
};
const query = (name: string, sql: string) => ({
  resourceType: 'Library',
  name,
  status: 'active',
  type: { coding: [{ system: SQL_ON_FHIR_TYPES, code: 'sql-query' }] },
  content: [{ contentType: 'application/sql', data: Buffer.from(sql).toString('base64') }],
  relatedArtifact: [
    { type: 'depends-on', resource: OBSERVATIONS.url, label: 'obs' },
    { type: 'depends-on', resource: PATIENTS.url, label: 'patients' },
  ],
});

const CASES = [
  { label: 'the Observation view alone', subject: OBSERVATIONS },
  { label: 'SQLQuery: count per gender and code', subject: query('counts', 'SELECT p.gender, o.code, count(*) AS n FROM obs o JOIN patients p ON p.id = o.patient GROUP BY ALL') },
  { label: "SQLQuery: every Observation, patient's birth date", subject: query('with_birth', 'SELECT o.id, o.code, o.value, o.unit, o.effective, p.birth_date FROM obs o JOIN patients p ON p.id = o.patient') },
];

interface Run {
  seconds: number;
  rows: number;
  timings?: SqlSubjectTimings;
  idleRssMb: number;
  peakRssMb: number;
}

export async function benchSql(args: string[]): Promise<void> {
  const target = Number(args.find((a) => a.startsWith('--resources='))?.split('=')[1] ?? '1000000');
  const repeat = Number(args.find((a) => a.startsWith('--repeat='))?.split('=')[1] ?? '3');
  const format = args.find((a) => a.startsWith('--format='))?.split('=')[1] ?? 'parquet';
  const memoryLimitMb = Number.parseInt(loadConfig().sql.export.memoryLimit, 10);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-bench-sql-'));
  const devServer = await startDevServer({ headless: true });
  const store = await keptStore(target);
  const outputDir = path.join(tmp, 'local');
  const output = new LocalOutputStore(outputDir);
  const service = { databaseUrl: store.databaseUrl, tenant: store.tenant, temporalAddress: devServer.address, env: { OUTPUT_BACKEND: 'local', OUTPUT_DIR: outputDir }, output };
  const rounds: Run[][] = [];
  try {
    for (let i = 0; i < repeat; i++) {
      const round: Run[] = [];
      for (const { label, subject } of CASES) {
        round.push(
          await withBenchService(service, async ({ fhirBase, client, peakRssMb, idleRssMb }) => {
            const exportId = await sqlExportDone(fhirBase, [
              { name: 'subject', part: [{ name: 'name', valueString: 'out' }, { name: 'subjectResource', resource: subject }] },
              // A SQL subject's tables come inline, by canonical.
              ...(subject === OBSERVATIONS ? [] : [OBSERVATIONS, PATIENTS].map((resource) => ({ name: 'context', resource }))),
              { name: '_format', valueCode: format },
            ]);
            const seconds = await exportSeconds(client, exportId);
            const status = await client.workflow.getHandle(exportId).query<{ views: Record<string, { rows: number; sql?: { timings: SqlSubjectTimings } }> }>('viewExportStatus');
            console.log(`  ${label}: ${await phases(client, exportId)}`);
            await output.deletePrefix(`${store.tenant}/${exportId}/`);
            return { seconds, rows: status.views.out.rows, timings: status.views.out.sql?.timings, idleRssMb, peakRssMb: peakRssMb() };
          }),
        );
      }
      rounds.push(round);
    }
  } finally {
    await devServer.stop();
    rmSync(tmp, { recursive: true, force: true });
  }

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  console.log('');
  console.log(`store: ${store.label}; $sql-export to ${format}, one fresh worker per case; the median of ${repeat} rounds, the highest peak RSS; engine memory_limit ${memoryLimitMb} MB`);
  console.log(
    `${'case'.padEnd(48)} ${'rows'.padStart(9)} ${'seconds'.padStart(8)} ${'rows/s'.padStart(8)} ${'vs view'.padStart(8)} ${'tables s'.padStart(9)} ${'SQL s'.padStart(6)} ${'write s'.padStart(8)} ${'loop ms'.padStart(8)} ${'idle RSS'.padStart(9)} ${'peak RSS'.padStart(9)} ${'RSS bound'.padStart(10)}`,
  );
  CASES.forEach(({ label }, k) => {
    const runs = rounds.map((round) => round[k]);
    const seconds = median(runs.map((r) => r.seconds));
    const ratio = median(rounds.map((round) => round[k].seconds / round[0].seconds));
    const split = (pick: (t: SqlSubjectTimings) => number) => (runs[0].timings ? (median(runs.map((r) => pick(r.timings!))) / 1000).toFixed(1) : '-');
    const peak = Math.max(...runs.map((r) => r.peakRssMb));
    const idle = median(runs.map((r) => r.idleRssMb));
    const loop = runs[0].timings ? String(Math.max(...runs.map((r) => r.timings!.eventLoopMaxDelayMs ?? 0))) : '-';
    console.log(
      `${label.padEnd(48)} ${String(runs[0].rows).padStart(9)} ${seconds.toFixed(1).padStart(8)} ${(runs[0].rows / seconds).toFixed(0).padStart(8)} ${`${ratio.toFixed(2)}x`.padStart(8)} ${split((t) => t.materialiseMs).padStart(9)} ${split((t) => t.sqlMs).padStart(6)} ${split((t) => t.writeMs).padStart(8)} ${loop.padStart(8)} ${`${idle.toFixed(0)} MB`.padStart(9)} ${`${peak.toFixed(0)} MB`.padStart(9)} ${`${(memoryLimitMb + idle + 150).toFixed(0)} MB`.padStart(10)}`,
    );
  });
}
