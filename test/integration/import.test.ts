import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Pool } from 'pg';
import { importPaths as importOnThisThread } from '../../src/import/importer';
import { ResourceStore } from '../../src/store/resource-store';
import { countImportProgress, importMetrics } from '../../src/metrics/metrics';
import { migratedPool, uniqueTenant } from '../support/database';

const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** A transaction Bundle shaped like Synthea's: urn:uuid fullUrls and references, POST entries. */
function syntheaLikeBundle(patient: number) {
  const p = uuid(patient);
  const org = uuid(patient + 100);
  const enc = uuid(patient + 200);
  const obs = uuid(patient + 300);
  const entry = (id: string, resource: object, type: string) => ({
    fullUrl: `urn:uuid:${id}`,
    resource: { id, ...resource },
    request: { method: 'POST', url: type },
  });
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      entry(p, { resourceType: 'Patient', managingOrganization: { reference: `urn:uuid:${org}` } }, 'Patient'),
      entry(org, { resourceType: 'Organization', name: 'Clinic' }, 'Organization'),
      entry(enc, { resourceType: 'Encounter', status: 'finished', subject: { reference: `urn:uuid:${p}` }, serviceProvider: { reference: `urn:uuid:${org}` } }, 'Encounter'),
      entry(obs, {
        resourceType: 'Observation',
        status: 'final',
        subject: { reference: `urn:uuid:${p}` },
        encounter: { reference: `urn:uuid:${enc}` },
        performer: [{ reference: 'Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999' }],
      }, 'Observation'),
    ],
  };
}

// The compiled importer reads on a worker thread (as `bulkflow import` does); the sources read
// on the calling thread. Both are held to the same behaviour.
const compiled = path.resolve(__dirname, '../../dist/src/import/importer.js');
const importWithReaderThread: typeof importOnThisThread = (store, paths, options) => require(compiled).importPaths(store, paths, { ...options, readerThread: true });

describe.each([
  ['reading on this thread', importOnThisThread],
  ['reading on a worker thread', importWithReaderThread],
])('bulkflow import (%s)', (_mode, importPaths) => {
  let pool: Pool;
  let store: ResourceStore;
  let dir: string;

  beforeAll(async () => {
    pool = await migratedPool();
  });
  beforeEach(() => {
    store = new ResourceStore(pool, uniqueTenant('import'));
    dir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-import-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  afterAll(() => pool.end());

  it('imports Synthea-shaped bundles (gzipped), resolving urn:uuid references, also from a bare Group in another file', async () => {
    writeFileSync(path.join(dir, 'a-patient.json.gz'), gzipSync(JSON.stringify(syntheaLikeBundle(1))));
    writeFileSync(path.join(dir, 'b-patient.json'), JSON.stringify(syntheaLikeBundle(2)));
    // Sorted first, so its members are not known yet when it is read.
    writeFileSync(
      path.join(dir, '0-group.json'),
      JSON.stringify({
        resourceType: 'Group',
        id: 'all',
        type: 'person',
        actual: true,
        member: [{ entity: { reference: `urn:uuid:${uuid(1)}` } }, { entity: { reference: `urn:uuid:${uuid(2)}` } }],
      }),
    );

    const summary = await importPaths(store, [dir]);
    expect(summary.written).toEqual({ Patient: 2, Organization: 2, Encounter: 2, Observation: 2, Group: 1 });
    expect(summary.skipped).toEqual([]);
    expect(summary.unresolvedReferences).toEqual([]);
    expect(summary.conditionalReferences).toBe(2);

    const observation = JSON.parse((await store.read('Observation', uuid(301)))!.body!);
    expect(observation.subject.reference).toBe(`Patient/${uuid(1)}`);
    expect(observation.encounter.reference).toBe(`Encounter/${uuid(201)}`);
    expect(observation.performer[0].reference).toMatch(/^Practitioner\?identifier=/);
    const group = JSON.parse((await store.read('Group', 'all'))!.body!);
    expect(group.member.map((m: { entity: { reference: string } }) => m.entity.reference)).toEqual([
      `Patient/${uuid(1)}`,
      `Patient/${uuid(2)}`,
    ]);
    const { rows } = await pool.query(
      'SELECT member_id FROM group_memberships WHERE tenant = $1 ORDER BY member_id',
      [store.tenant],
    );
    expect(rows.map((r) => r.member_id)).toEqual([uuid(1), uuid(2)]);
  });

  it('is idempotent: importing the same files again changes nothing', async () => {
    writeFileSync(path.join(dir, 'p.json'), JSON.stringify(syntheaLikeBundle(1)));
    await importPaths(store, [dir]);
    const again = await importPaths(store, [dir]);
    expect(again.written).toEqual({});
    expect(again.unchanged).toBe(4);
  });

  it('streams NDJSON, reporting bad lines by file and line and importing the rest', async () => {
    const file = path.join(dir, 'mixed.ndjson');
    writeFileSync(
      file,
      [
        JSON.stringify({ resourceType: 'Patient', id: 'n1' }),
        '{not json',
        '',
        JSON.stringify({ resourceType: 'Spaceship', id: 'x' }),
        JSON.stringify({ resourceType: 'Patient', id: 'bad id!' }),
        JSON.stringify({ resourceType: 'Observation', id: 'o1', status: 'final', subject: { reference: 'Patient/n1' } }),
      ].join('\n'),
    );
    const metrics = importMetrics();
    const progress: number[] = [];
    const count = countImportProgress(metrics);
    const summary = await importPaths(store, [file], { batchSize: 1, onProgress: (p) => (progress.push(p.resources), count(p)) });
    expect(summary.written).toEqual({ Patient: 1, Observation: 1 });
    // Progress moves within the file, and the import counters with it (bulkflow import serves them on METRICS_PORT).
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(2);
    expect((await metrics.registry.getSingleMetric('bulkflow_import_resources_total')!.get()).values[0].value).toBe(2);
    expect((await metrics.registry.getSingleMetric('bulkflow_import_files_total')!.get()).values[0].value).toBe(1);
    expect(summary.skipped.map((s) => [path.basename(s.file), s.where])).toEqual([
      ['mixed.ndjson', 'line 2'],
      ['mixed.ndjson', 'line 4'],
      ['mixed.ndjson', 'line 5'],
    ]);
    expect(summary.skipped[1].reason).toMatch(/Unknown resource type "Spaceship"/);
  });

  it('writes the versions of a resource in file order, even with batches in flight at once', async () => {
    const file = path.join(dir, 'versions.ndjson');
    const lines: string[] = [];
    for (let v = 1; v <= 40; v++) {
      lines.push(JSON.stringify({ resourceType: 'Patient', id: 'versioned', birthDate: `${1960 + v}-01-01` }));
    }
    writeFileSync(file, lines.join('\n'));
    const summary = await importPaths(store, [file], { batchSize: 1 });
    expect(summary.written).toEqual({ Patient: 40 });
    const patient = await store.read('Patient', 'versioned');
    expect(patient?.versionId).toBe('40');
    expect(JSON.parse(patient!.body!).birthDate).toBe(`${1960 + 40}-01-01`);
  });

  it('applies DELETE entries and reports files it cannot read', async () => {
    await store.put({ resourceType: 'Patient', id: 'gone' });
    writeFileSync(
      path.join(dir, 'batch.json'),
      JSON.stringify({ resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'DELETE', url: 'Patient/gone' } }] }),
    );
    writeFileSync(path.join(dir, 'broken.json.gz'), Buffer.from([0x1f, 0x8b, 1, 2, 3]));
    const summary = await importPaths(store, [dir]);
    expect(summary.deleted).toBe(1);
    expect((await store.read('Patient', 'gone'))?.deleted).toBe(true);
    expect(summary.skipped).toHaveLength(1);
    expect(summary.skipped[0].file).toMatch(/broken\.json\.gz$/);
  });
});
