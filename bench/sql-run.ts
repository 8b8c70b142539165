/**
 * `npm run bench -- sql-run`: `$sql-run` of the bench's two Observation views (flat; forEach over
 * code.coding) streamed as NDJSON from the kept 1M-resource store through the real API: the time
 * to the first row and to the last, the median of `--repeat=N` runs (default 5). And, in the same
 * run, what the evaluation path adds to the first row: compiling the view and evaluating the
 * first resource, with the fast paths and on the FHIRPath engine alone (`compileView(view,
 * { fastPaths: false })`), the median of 100.
 */
import { createPool } from '../src/store/database';
import { createApp } from '../src/http/app';
import { createLogger } from '../src/log';
import { findFreePort } from '../src/process/free-port';
import { ResourceStore } from '../src/store/resource-store';
import { viewRows } from '../src/views/run-view';
import { compileView } from '../src/views/view-definition';
import { keptStore } from './export';
import { FLAT_OBSERVATION_VIEW, OBSERVATION_CODINGS_VIEW } from './views';

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

export async function benchSqlRun(args: string[]): Promise<void> {
  const target = Number(args.find((a) => a.startsWith('--resources='))?.split('=')[1] ?? '1000000');
  const repeat = Number(args.find((a) => a.startsWith('--repeat='))?.split('=')[1] ?? '5');
  const store = await keptStore(target);
  const pool = createPool(store.databaseUrl, { max: 4 });
  const port = await findFreePort();
  const app = createApp({ config: { baseUrl: `http://127.0.0.1:${port}`, fhirBasePath: '/fhir' }, log: createLogger('warn'), store: new ResourceStore(pool, store.tenant) });
  const server = app.listen(port, '127.0.0.1');
  const fhirBase = `http://127.0.0.1:${port}/t/${store.tenant}/fhir`;
  const { rows } = await pool.query<{ body: string }>("SELECT body FROM resource_versions WHERE tenant = $1 AND resource_type = 'Observation' AND superseded_at IS NULL AND NOT deleted LIMIT 1", [store.tenant]);
  const first = JSON.parse(rows[0].body) as Record<string, unknown>;
  try {
    console.log(`store: ${store.label}; $sql-run _format=ndjson, the median of ${repeat} runs; first-row evaluation: compile + the first resource, the median of 100`);
    console.log(`${'view'.padEnd(22)} ${'rows'.padStart(8)} ${'first row s'.padStart(12)} ${'last row s'.padStart(11)} ${'eval, fast paths ms'.padStart(20)} ${'eval, engine ms'.padStart(16)}`);
    for (const view of [FLAT_OBSERVATION_VIEW, OBSERVATION_CODINGS_VIEW]) {
      const runs: Array<{ first: number; last: number; rows: number }> = [];
      for (let i = 0; i < repeat; i++) runs.push(await streamed(fhirBase, view));
      const evaluation = (fastPaths: boolean) =>
        median(
          Array.from({ length: 100 }, () => {
            const started = process.hrtime.bigint();
            viewRows(compileView(view, { fastPaths }), first);
            return Number(process.hrtime.bigint() - started) / 1e6;
          }),
        );
      console.log(
        `${String(view.name).padEnd(22)} ${String(runs[0].rows).padStart(8)} ${median(runs.map((r) => r.first)).toFixed(3).padStart(12)} ${median(runs.map((r) => r.last)).toFixed(1).padStart(11)} ${evaluation(true).toFixed(3).padStart(20)} ${evaluation(false).toFixed(3).padStart(16)}`,
      );
    }
  } finally {
    server.close();
    await pool.end();
  }
}

/** One `$sql-run`: seconds to the first row's bytes and to the end, and the rows. */
async function streamed(fhirBase: string, view: Record<string, unknown>): Promise<{ first: number; last: number; rows: number }> {
  const started = performance.now();
  const res = await fetch(`${fhirBase}/$sql-run`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'subjectResource', resource: view }, { name: '_format', valueCode: 'ndjson' }] }),
  });
  if (res.status !== 200) throw new Error(`$sql-run answered ${res.status}: ${await res.text()}`);
  let first = 0;
  let rows = 0;
  for await (const chunk of res.body!) {
    if (first === 0) first = (performance.now() - started) / 1000;
    for (const byte of chunk as Uint8Array) if (byte === 10) rows++;
  }
  return { first, last: (performance.now() - started) / 1000, rows };
}
