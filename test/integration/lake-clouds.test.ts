/**
 * The lake on S3 (versitygw) and Azure Blob (Azurite): a schedule of two views runs while a
 * writer changes Observations; the destination, copied out of the bucket file by file and read
 * with DuckDB's own Parquet reader, applied run by run, is row for row a one-off `$sql-export` of
 * the same views; the periodic full run prunes the folders it superseded and leaves no staged file
 * (a lake run's files are staged, then moved: a copy and a delete on these stores).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { startExportStack, type ExportStack } from '../support/export-stack';
import { applyRuns, multiset, readParquet, type Row } from '../support/lake-reader';
import { codingView, codingViewKeyed, flatView, KEY, lakeSchedules, mirror, observation, sqlExport, startWriter } from '../support/lake-fixtures';
import { waitFor } from '../support/wait';

jest.setTimeout(300_000);

describe.each(['s3', 'azure'] as const)('a lake on %s', (backend) => {
  let stack: ExportStack;
  let db: DuckDBInstance;
  const tmp = mkdtempSync(path.join(os.tmpdir(), `bulkflow-lake-${backend}-`));
  const { admin, runOnce } = lakeSchedules(() => stack);
  let copies = 0;
  /** A fresh local copy of what the bucket holds under the tenant's `folder`. */
  const copyOf = (folder: string) => mirror(stack.output, `${stack.store.tenant}/${folder}/`, path.join(tmp, String(copies++)));

  /** A one-off `$sql-export` of the views, read from the bucket the same way. */
  async function oneOff(views: Array<[string, unknown]>): Promise<Map<string, Row[]>> {
    const parameter = [{ name: '_format', valueCode: 'parquet' }, ...views.map(([name, resource]) => ({ name: 'subject', part: [{ name: 'name', valueString: name }, { name: 'subjectResource', resource }] }))];
    const kick = await fetch(`${stack.fhir}/$sql-export`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json', Prefer: 'respond-async' }, body: JSON.stringify({ resourceType: 'Parameters', parameter }) });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    await waitFor(async () => (await fetch(statusUrl, { redirect: 'manual' })).status === 303, 60_000, 'the one-off export');
    const dir = await copyOf(statusUrl.split('/').pop()!);
    const out = new Map<string, Row[]>();
    for (const [name] of views) out.set(name, await readParquet(db, readdirSync(dir).filter((f) => f.startsWith(`${name}-`)).map((f) => path.join(dir, f))));
    return out;
  }

  beforeAll(async () => {
    stack = await startExportStack({ backend, settings: { partitionSize: 150, maxPartResources: 60, maxParallelPartitions: 2 } });
    const seed = Array.from({ length: 240 }, (_, i) => observation(i, `p-${i % 4}`, i % 3));
    await stack.store.write([...seed.map((resource) => ({ op: 'put' as const, resource })), { op: 'put', resource: flatView }]);
    await stack.startWorker();
    db = await DuckDBInstance.create(':memory:');
  }, 120_000);
  afterAll(async () => {
    await admin('DELETE', '/obs');
    db?.closeSync();
    await stack?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('keeps each view a table that is row for row a one-off $sql-export, through incremental runs, a full run and its pruning', async () => {
    const definition = { id: 'obs', cron: '0 0 1 1 *', destination: 'lake/obs', fullEvery: 3, sqlExport: sqlExport({ name: 'subjectReference', valueReference: { reference: 'ViewDefinition/lake-flat' } }, { name: 'subjectResource', resource: codingView }) };
    const created = await admin('POST', '', definition);
    expect([created.status, created.status === 201 ? '' : await created.text()]).toEqual([201, '']);
    const writer = startWriter(stack.store, 1000);
    const chain = [];
    try {
      for (let i = 0; i < 3; i++) {
        chain.push(await runOnce('obs'));
        if (i === 1) await writer.stop();
      }
    } finally {
      await writer.stop();
    }
    expect(chain.map((r) => r.state)).toEqual(['completed', 'completed', 'completed']);
    expect(chain.map((r) => r.manifest!.subjects.obs_codings.fullBecause ?? 'incremental')).toEqual(['first', 'incremental', 'incremental']);
    expect(writer.done.updated + writer.done.deleted).toBeGreaterThan(0);
    const expected = await oneOff([['obs_flat', flatView], ['obs_codings', codingViewKeyed]]);
    const lake = await copyOf('lake/obs');
    for (const [subject, key] of [['obs_flat', 'id'], ['obs_codings', KEY]]) expect(multiset(await applyRuns(db, lake, subject, key))).toEqual(multiset(expected.get(subject)!));
    expect(readdirSync(path.join(lake, 'obs_flat')).filter((d) => d.startsWith('run=')).length).toBe(3);

    // Run 4 is full (fullEvery 3: three runs since the last full one): the earlier folders go once it is complete, and nothing stays staged.
    await stack.store.write([{ op: 'delete', resourceType: 'Observation', id: 'o-3' }]);
    const full = await runOnce('obs');
    expect([full.state, full.manifest!.subjects.obs_flat.fullBecause]).toEqual(['completed', 'fullEvery']);
    const pruned = await copyOf('lake/obs');
    expect(readdirSync(path.join(pruned, 'obs_flat')).filter((d) => d.startsWith('run='))).toEqual([`run=${full.manifest!.run}`]);
    expect(await stack.output.list(`${stack.store.tenant}/lake/obs/_staging/`)).toEqual([]);
    const again = await oneOff([['obs_flat', flatView], ['obs_codings', codingViewKeyed]]);
    for (const [subject, key] of [['obs_flat', 'id'], ['obs_codings', KEY]]) expect(multiset(await applyRuns(db, pruned, subject, key))).toEqual(multiset(again.get(subject)!));
  });
});
