/**
 * `npm run conformance [-- <suite dir>] [--url=<FHIR base>] [--report=<file>]`: runs the SQL on
 * FHIR test suite against `$sql-run`, writes `test_report.json` and prints the pass counts per
 * tag. Without `--url` it serves bulkflow's API itself, on a fresh database of the local
 * PostgreSQL (`CONFORMANCE_DATABASE_SERVER_URL`), dropped afterwards. Exits 1 below the targets
 * (every `shareable` case; 9 of 11 `experimental`).
 */
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createApp } from '../src/http/app';
import { createLogger } from '../src/log';
import { createPool, dropDatabase, ensureDatabase } from '../src/store/database';
import { migrate } from '../src/store/migrate';
import { ResourceStore } from '../src/store/resource-store';
import { runSqlOnFhirSuite, type SuiteReport } from './sql-on-fhir-suite';
import { sqlOnFhirSuiteDir } from './suite-location';

/** At least this many passes per tag, or the run fails. */
export const TARGETS: Record<string, (total: number) => number> = { shareable: (total) => total, experimental: () => 9 };

/** Serves bulkflow's API (no Temporal: `$sql-run` needs only the store) on a fresh database for `work`. */
export async function withLocalApi<T>(work: (fhirBaseUrl: string) => Promise<T>): Promise<T> {
  const server = new URL(process.env.CONFORMANCE_DATABASE_SERVER_URL ?? 'postgres://127.0.0.1:5432');
  server.pathname = `/bulkflow_conformance_${process.pid}`;
  const databaseUrl = server.toString();
  await dropDatabase(databaseUrl);
  await ensureDatabase(databaseUrl);
  const pool = createPool(databaseUrl, { max: 4 });
  try {
    await migrate(pool);
    const app = createApp({ config: { baseUrl: 'http://127.0.0.1', fhirBasePath: '/fhir' }, log: createLogger('error'), store: new ResourceStore(pool) });
    const listening = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => listening.once('listening', resolve));
    try {
      return await work(`http://127.0.0.1:${(listening.address() as AddressInfo).port}/fhir`);
    } finally {
      await new Promise((resolve) => listening.close(resolve));
    }
  } finally {
    await pool.end();
    await dropDatabase(databaseUrl);
  }
}

export function belowTargets(report: SuiteReport): string[] {
  return Object.entries(TARGETS).flatMap(([tag, target]) => {
    const counts = report.byTag[tag] ?? { passed: 0, total: 0 };
    return counts.passed < target(counts.total) ? [`${tag}: ${counts.passed}/${counts.total}, target ${target(counts.total)}`] : [];
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const given = args.find((a) => !a.startsWith('--'));
  const suiteDir = given ? path.resolve(given) : sqlOnFhirSuiteDir();
  if (!suiteDir) throw new Error('Name the SQL on FHIR test suite folder: npm run conformance -- <folder>, or set SOF_TESTS_DIR');
  const reportFile = path.resolve(option('report') ?? 'test_report.json');
  const url = option('url');
  const report = url ? await runSqlOnFhirSuite(suiteDir, url) : await withLocalApi((base) => runSqlOnFhirSuite(suiteDir, base));
  writeFileSync(reportFile, JSON.stringify(report.testReport, null, 2) + '\n');
  for (const r of report.results.filter((x) => !x.passed)) console.log(`FAIL ${r.file} :: ${r.name} [${r.tags.join(', ')}]\n  ${r.reason}`);
  for (const [tag, { passed, total }] of Object.entries(report.byTag)) console.log(`${tag.padEnd(14)} ${passed}/${total}`);
  console.log(`report written to ${reportFile}`);
  const below = belowTargets(report);
  if (below.length > 0) {
    console.error(`below target: ${below.join('; ')}`);
    process.exit(1);
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
