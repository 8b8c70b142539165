/**
 * Recurring view exports into a lake, end to end on the real stack: a schedule of two views
 * (one stored and named by reference, one inline with a `forEach`) runs while a writer creates,
 * updates and deletes Observations. The tables are read back with DuckDB's own Parquet reader
 * and Hive partitioning (not bulkflow's code): the runs, applied in order (a full run replaces the
 * table; an incremental run drops the keys in its deleted file and the keys of its rows, then
 * adds its rows), give row for row what a one-off `$sql-export` of the same views gives at the
 * same data. Then a periodic full run prunes the folders it superseded, and a changed or deleted
 * stored view fails its run with the reason.
 */
import { readdirSync, readFileSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { scheduleCommand } from '../../src/commands/schedule';
import { startExportStack, type ExportStack } from '../support/export-stack';
import { waitFor } from '../support/wait';
import { applyRuns, multiset, readParquet, readTable, type LakeManifestView, type Row } from '../support/lake-reader';
import { codingView, codingViewKeyed, flatView, KEY, lakeSchedules, observation, sqlExport, startWriter, type RunView } from '../support/lake-fixtures';

describe('recurring view exports into a lake', () => {
  let stack: ExportStack;
  let db: DuckDBInstance;
  let lakeDir: string;

  const { admin, read, runOnce } = lakeSchedules(() => stack);

  /** What a one-off `$sql-export` of these views gives now, read by the same reader. */
  async function oneOff(views: Array<[string, unknown]>, context: unknown[] = []): Promise<Map<string, Row[]>> {
    const body = {
      resourceType: 'Parameters',
      parameter: [
        { name: '_format', valueCode: 'parquet' },
        ...views.map(([name, resource]) => ({ name: 'subject', part: [{ name: 'name', valueString: name }, { name: 'subjectResource', resource }] })),
        ...context.map((resource) => ({ name: 'context', resource })),
      ],
    };
    const kick = await fetch(`${stack.fhir}/$sql-export`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json', Prefer: 'respond-async' }, body: JSON.stringify(body) });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    await waitFor(async () => (await fetch(statusUrl, { redirect: 'manual' })).status === 303, 60_000, 'the one-off export');
    const exportId = statusUrl.split('/').pop()!;
    const out = new Map<string, Row[]>();
    const dir = path.join(stack.outputDir!, stack.store.tenant, exportId);
    for (const [name] of views) out.set(name, await readParquet(db, readdirSync(dir).filter((f) => f.startsWith(`${name}-`)).map((f) => path.join(dir, f))));
    return out;
  }

  beforeAll(async () => {
    stack = await startExportStack({ settings: { partitionSize: 150, maxPartResources: 60, maxParallelPartitions: 2 } });
    const seed = Array.from({ length: 240 }, (_, i) => observation(i, `p-${i % 4}`, i % 3));
    await stack.store.write([...seed.map((resource) => ({ op: 'put' as const, resource })), { op: 'put', resource: flatView }]);
    await stack.startWorker();
    db = await DuckDBInstance.create(':memory:');
    lakeDir = path.join(stack.outputDir!, stack.store.tenant, 'lake', 'obs');
  }, 120_000);
  afterAll(async () => {
    await admin('DELETE', '/obs');
    db?.closeSync();
    await stack?.close();
  });

  it('keeps each view a table that, applied run by run, is row for row a one-off $sql-export, through five incremental runs, a full run and its pruning', async () => {
    // The webhook receives each completed run's manifest.
    const hooked: Array<{ exportId: string; manifest: LakeManifestView }> = [];
    const receiver = createServer((req, res) => {
      let text = '';
      req.on('data', (chunk) => (text += chunk));
      req.on('end', () => {
        hooked.push(JSON.parse(text));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const definition = {
      id: 'obs',
      webhook: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/lake`,
      cron: '0 0 1 1 *', // yearly: triggers run it here
      destination: 'lake/obs',
      fullEvery: 6,
      sqlExport: sqlExport({ name: 'subjectReference', valueReference: { reference: 'ViewDefinition/lake-flat' } }, { name: 'subjectResource', resource: codingView }),
    };
    const created = await admin('POST', '', definition);
    expect([created.status, created.status === 201 ? '' : await created.text()]).toEqual([201, '']);

    // Run 1 (full: the tables' first), then five incremental runs while the writer writes.
    const writer = startWriter(stack.store, 1000);
    const chain: RunView[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        chain.push(await runOnce('obs'));
        if (i === 4) await writer.stop(); // the last run of the chain sees the data the one-off sees
      }
    } finally {
      await writer.stop();
    }
    expect(chain.map((r) => r.state)).toEqual(Array(6).fill('completed'));
    expect(writer.done.updated).toBeGreaterThan(0);
    expect(writer.done.deleted).toBeGreaterThan(0);
    expect(chain.map((r) => r.manifest!.subjects.obs_codings.fullBecause ?? 'incremental')).toEqual(['first', ...Array(5).fill('incremental')]);
    // Incremental runs carry deletions, and hold only the changes.
    expect(chain.slice(1).some((r) => (r.manifest!.subjects.obs_flat.deleted?.rows ?? 0) > 0)).toBe(true);
    expect(Math.max(...chain.slice(1).map((r) => r.manifest!.subjects.obs_flat.rows))).toBeLessThan(chain[0].manifest!.subjects.obs_flat.rows);

    const expected = await oneOff([['obs_flat', flatView], ['obs_codings', codingViewKeyed]]);
    expect(expected.get('obs_flat')!.length).toBeGreaterThan(240);
    for (const [subject, key] of [['obs_flat', 'id'], ['obs_codings', KEY]]) expect(multiset(await applyRuns(db, lakeDir, subject, key))).toEqual(multiset(expected.get(subject)!));

    // The layout: Hive folders of part-NNNNN files, _latest naming the newest run and the full run to start from.
    const last = chain.at(-1)!.manifest!;
    expect(readdirSync(path.join(lakeDir, 'obs_flat')).filter((d) => d.startsWith('run=')).length).toBe(6);
    expect(last.subjects.obs_flat.files.every((f) => /^obs_flat\/run=\d{8}T\d{6}\.\d{3}Z\/part-\d{5}\.parquet$/.test(f.key))).toBe(true);
    expect(JSON.parse(readFileSync(path.join(lakeDir, 'obs_flat', '_latest'), 'utf8'))).toEqual({ run: last.run, fullRun: chain[0].manifest!.run });
    expect(existsSync(path.join(lakeDir, '_staging')) ? readdirSync(path.join(lakeDir, '_staging')) : []).toEqual([]);

    // Run 7 is full (fullEvery 6): the tables are rewritten, and the folders before it removed once it is complete.
    await stack.store.write([{ op: 'delete', resourceType: 'Observation', id: 'o-3' }]);
    const full = await runOnce('obs');
    expect(full.state).toBe('completed');
    expect(full.manifest!.subjects.obs_flat.fullBecause).toBe('fullEvery');
    expect(readdirSync(path.join(lakeDir, 'obs_flat')).filter((d) => d.startsWith('run='))).toEqual([`run=${full.manifest!.run}`]);
    const again = await oneOff([['obs_flat', flatView], ['obs_codings', codingViewKeyed]]);
    const { rows } = await readTable(db, path.join(lakeDir, 'obs_flat'), 'id');
    expect(multiset(rows.get(full.manifest!.run)!)).toEqual(multiset(again.get('obs_flat')!));
    await waitFor(async () => hooked.length >= 7, 30_000, 'a webhook delivery per run');
    expect(hooked.map((h) => h.manifest.run).sort()).toEqual([...chain, full].map((r) => r.manifest!.run).sort());
    expect(hooked.find((h) => h.manifest.run === full.manifest!.run)!.manifest).toEqual(full.manifest);

    // A PUT that changes one view: that table's next run is full, the other's incremental, both at
    // one snapshot (the watermark), so the run after it misses nothing written meanwhile.
    const codingView2 = { ...codingView, select: [codingView.select[0], { forEach: 'code.coding', column: [...codingView.select[1].column!, { name: 'code_again', path: 'code' }] }] };
    const updated = await admin('PUT', '/obs', { ...definition, id: undefined, sqlExport: sqlExport({ name: 'subjectReference', valueReference: { reference: 'ViewDefinition/lake-flat' } }, { name: 'subjectResource', resource: codingView2 }) });
    expect(updated.status).toBe(200);
    const later = startWriter(stack.store, 5000);
    let mixed: RunView;
    try {
      mixed = await runOnce('obs');
      await runOnce('obs');
    } finally {
      await later.stop();
    }
    expect([mixed.manifest!.subjects.obs_codings.fullBecause, mixed.manifest!.subjects.obs_flat.fullBecause]).toEqual(['changed', undefined]);
    expect(mixed.manifest!.subjects.obs_codings.snapshot).toBe(mixed.manifest!.subjects.obs_flat.snapshot);
    await runOnce('obs');
    const third = await oneOff([['obs_flat', flatView], ['obs_codings', { ...codingView2, select: [{ column: [{ name: KEY, path: 'getResourceKey()' }] }, ...codingView2.select] }]]);
    for (const [subject, key] of [['obs_flat', 'id'], ['obs_codings', KEY]]) expect(multiset(await applyRuns(db, lakeDir, subject, key))).toEqual(multiset(third.get(subject)!));
    await waitFor(async () => hooked.length >= 10, 30_000, 'the later runs\' webhook deliveries');
    receiver.close();
  }, 600_000);

  it('rewrites a SQL subject whole on every run, beside an incremental view, and the table is the one-off result', async () => {
    const statusView = { resourceType: 'ViewDefinition', url: 'https://bulkflow.example/views/lake-status', name: 'obs_status', resource: 'Observation', status: 'active', select: [{ column: [{ name: 'status', path: 'status' }] }] };
    const counts = {
      resourceType: 'Library',
      url: 'https://bulkflow.example/sql/lake-counts',
      name: 'counts',
      status: 'active',
      type: { coding: [{ system: 'http://hl7.org/fhir/uv/sql-on-fhir/CodeSystem/LibraryTypesCodes', code: 'sql-query' }] },
      content: [{ contentType: 'application/sql', data: Buffer.from('SELECT status, count(*) AS n FROM s GROUP BY ALL').toString('base64') }],
      relatedArtifact: [{ type: 'depends-on', resource: statusView.url, label: 's' }],
    };
    const body = {
      id: 'sql',
      cron: '0 0 1 1 *',
      destination: 'lake/sql',
      sqlExport: {
        resourceType: 'Parameters',
        parameter: [
          { name: 'subject', part: [{ name: 'name', valueString: 'counts' }, { name: 'subjectResource', resource: counts }] },
          { name: 'subject', part: [{ name: 'name', valueString: 'obs_status' }, { name: 'subjectResource', resource: statusView }] },
          { name: 'context', resource: statusView },
        ],
      },
    };
    const created = await admin('POST', '', body);
    expect([created.status, created.status === 201 ? '' : await created.text()]).toEqual([201, '']);
    const first = await runOnce('sql');
    await stack.store.write([{ op: 'put', resource: observation(9001, 'p-1', 1) }, { op: 'delete', resourceType: 'Observation', id: 'o-5' }]);
    const second = await runOnce('sql');
    expect([first.state, second.state]).toEqual(['completed', 'completed']);
    expect([first.manifest!.subjects.counts.fullBecause, second.manifest!.subjects.counts.fullBecause]).toEqual(['first', 'sql']);
    expect(second.manifest!.subjects.obs_status.fullBecause).toBeUndefined();
    expect(second.manifest!.subjects.obs_status.snapshot).toBe(second.manifest!.subjects.counts.snapshot);

    const dir = path.join(stack.outputDir!, stack.store.tenant, 'lake', 'sql');
    expect(JSON.parse(readFileSync(path.join(dir, 'counts', '_latest'), 'utf8'))).toEqual({ run: second.manifest!.run, fullRun: second.manifest!.run });
    // The first run's folder went when the second, full, was complete.
    expect(readdirSync(path.join(dir, 'counts')).filter((d) => d.startsWith('run='))).toEqual([`run=${second.manifest!.run}`]);
    const expected = await oneOff([['counts', counts], ['obs_status', { ...statusView, select: [{ column: [{ name: KEY, path: 'getResourceKey()' }] }, ...statusView.select] }]], [statusView]);
    const { rows } = await readTable(db, path.join(dir, 'counts'), 'status');
    expect(multiset(rows.get(second.manifest!.run)!)).toEqual(multiset(expected.get('counts')!));
    expect(multiset(await applyRuns(db, dir, 'obs_status', KEY))).toEqual(multiset(expected.get('obs_status')!));
    await admin('DELETE', '/sql');
  }, 300_000);

  it('is made from the command line: --sql-export <file>, --destination, --mode, --full-every, and runs into its table', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const cli = (...args: string[]) => scheduleCommand(args, { apiUrl: stack.url }, (l) => out.push(l), (l) => err.push(l));
    const statusView = { resourceType: 'ViewDefinition', name: 'obs_status', resource: 'Observation', status: 'active', select: [{ column: [{ name: 'id', path: 'getResourceKey()' }, { name: 'status', path: 'status' }] }] };
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'lake-cli-')), 'sql-export.json');
    writeFileSync(file, JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'subject', part: [{ name: 'subjectResource', resource: statusView }] }] }));

    expect(await cli('create', 'cli-full', '--cron', '0 0 1 1 *', '--sql-export', file, '--mode', 'full', '--full-every', '3')).toBe(1);
    expect(err.pop()).toMatch(/400: fullEvery applies to mode incremental/);
    expect(await cli('create', 'cli', '--cron', '0 0 1 1 *', '--sql-export', file, '--full-every', 'often')).toBe(2);
    expect(err.pop()).toMatch(/--full-every takes a whole number/);
    expect(await cli('create', 'cli', '--cron', '0 0 1 1 *', '--sql-export', path.join(path.dirname(file), 'missing.json'))).toBe(2);
    expect(err.pop()).toMatch(/cannot read .*missing\.json: ENOENT/);

    expect(await cli('create', 'cli', '--cron', '0 0 1 1 *', '--sql-export', file, '--destination', 'lake/from-cli', '--mode', 'incremental', '--full-every', '3', '--retention', '1d')).toBe(0);
    expect(JSON.parse(out.pop()!)).toMatchObject({ id: 'cli', destination: 'lake/from-cli', mode: 'incremental', fullEvery: 3, retention: '1d', sqlExport: { resourceType: 'Parameters' } });
    expect(await cli('show', 'cli')).toBe(0);
    expect(JSON.parse(out.pop()!)).toMatchObject({ id: 'cli', destination: 'lake/from-cli', fullEvery: 3 });
    const run = await runOnce('cli');
    expect(run.state).toBe('completed');
    const dir = path.join(stack.outputDir!, stack.store.tenant, 'lake', 'from-cli');
    expect(JSON.parse(readFileSync(path.join(dir, 'obs_status', '_latest'), 'utf8'))).toMatchObject({ run: run.manifest!.run });
    const expected = await oneOff([['obs_status', statusView]]);
    expect(expected.get('obs_status')!.length).toBeGreaterThanOrEqual(240);
    expect(multiset(await applyRuns(db, dir, 'obs_status', 'id'))).toEqual(multiset(expected.get('obs_status')!));
    expect(await cli('delete', 'cli')).toBe(0);
  }, 180_000);

  it('fails a run clearly when a stored view changed or was deleted since the schedule was made, and the watermark stays', async () => {
    const changed = { ...flatView, select: [{ column: [...flatView.select[0].column, { name: 'unit', path: 'value.ofType(Quantity).unit' }] }] };
    await stack.store.write([{ op: 'put', resource: changed }]);
    const failed = await runOnce('obs');
    expect(failed.state).toBe('failed');
    expect(failed.reason).toMatch(/obs_flat: ViewDefinition\/lake-flat changed since the schedule was made; PUT the schedule/);
    await stack.store.write([{ op: 'delete', resourceType: 'ViewDefinition', id: 'lake-flat' }]);
    const gone = await runOnce('obs');
    expect(gone.reason).toMatch(/obs_flat: ViewDefinition\/lake-flat was deleted since the schedule was made/);
    const schedule = await read('obs');
    expect(schedule.watermark).toBe(schedule.runs.find((r) => r.state === 'completed')!.transactionTime);
  }, 300_000);
});
