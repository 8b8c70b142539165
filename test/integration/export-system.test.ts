import { gunzipSync } from 'node:zlib';
import { generatePopulation } from '../../src/generate/population';
import type { ResourceStore, WriteResult } from '../../src/store/resource-store';
import { downloadAll, downloadDeleted, kickOff, kickoffHeaders, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';
import { waitFor } from '../support/wait';

/** Writes a generated population; returns what the store holds now as `Type/id/versionId` keys. */
async function seed(store: ResourceStore, patients: number, seedValue: number): Promise<Map<string, string>> {
  const current = new Map<string, string>(); // Type/id -> versionId
  const resources = [...generatePopulation({ patients, seed: seedValue })];
  for (let i = 0; i < resources.length; i += 1000) {
    const results = await store.write(resources.slice(i, i + 1000).map((resource) => ({ op: 'put' as const, resource })));
    record(current, results);
  }
  return current;
}

function record(current: Map<string, string>, results: WriteResult[]): void {
  for (const r of results) {
    if (r.outcome === 'deleted') current.delete(`${r.resourceType}/${r.id}`);
    else if (r.versionId) current.set(`${r.resourceType}/${r.id}`, r.versionId);
  }
}

const asKeys = (current: Map<string, string>, filter: (type: string) => boolean = () => true) =>
  [...current].filter(([key]) => filter(key.split('/')[0])).map(([key, v]) => `${key}/${v}`).sort();

/** A file sent as is resumes by range: `bytes=N-` is 206 with the rest and its Content-Range, past the end 416; gzip ignores ranges. */
async function expectRangeResume(url: string): Promise<void> {
  const whole = Buffer.from(await (await fetch(url, { headers: { 'Accept-Encoding': 'identity' } })).arrayBuffer());
  const from = Math.floor(whole.length / 3);
  const rest = await fetch(url, { headers: { 'Accept-Encoding': 'identity', Range: `bytes=${from}-` } });
  expect([rest.status, rest.headers.get('content-range'), rest.headers.get('content-length')]).toEqual([206, `bytes ${from}-${whole.length - 1}/${whole.length}`, String(whole.length - from)]);
  expect(Buffer.from(await rest.arrayBuffer()).equals(whole.subarray(from))).toBe(true);
  const past = await fetch(url, { headers: { 'Accept-Encoding': 'identity', Range: `bytes=${whole.length}-` } });
  expect([past.status, past.headers.get('content-range')]).toEqual([416, `bytes */${whole.length}`]);
  await past.arrayBuffer();
  // A range with gzip would be a range of the compressed bytes: the whole file is sent instead.
  const zipped = await fetch(url, { headers: { 'Accept-Encoding': 'gzip', Range: `bytes=${from}-` } });
  expect(zipped.status).toBe(200);
  expect(Buffer.from(await zipped.arrayBuffer()).equals(whole)).toBe(true); // fetch decodes the gzip
}

describe('system-level $export (local files)', () => {
  let stack: ExportStack;
  let expected: Map<string, string>;

  beforeAll(async () => {
    // Small partitions and parts so that even this data set is split and rotated.
    stack = await startExportStack({ settings: { partitionSize: 700, maxPartResources: 300 } });
    expected = await seed(stack.store, 10, 11);
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  it('exports every current resource exactly once, in files of one type, with exact counts', async () => {
    const statusUrl = await kickOff(stack);
    const { response, manifest } = await pollUntilDone(statusUrl);

    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Date.parse(response.headers.get('expires')!)).toBeGreaterThan(Date.now());
    expect(Object.keys(manifest).sort()).toEqual(['error', 'output', 'request', 'requiresAccessToken', 'transactionTime']);
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.error).toEqual([]);
    expect(manifest.request).toBe(`${stack.fhir}/$export`);

    const { keys, byFile } = await downloadAll(manifest);
    expect(keys.sort()).toEqual(asKeys(expected));
    for (const [i, file] of byFile.entries()) {
      expect(manifest.output[i].url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/fhir\/bulkfiles\//);
      expect(file.lines).toHaveLength(manifest.output[i].count);
      expect(file.lines.every((r) => (r as { resourceType: string }).resourceType === file.type)).toBe(true);
    }
    // Observations (> 700) were split into partitions and parts of at most 300.
    const observationFiles = manifest.output.filter((o) => o.type === 'Observation');
    expect(observationFiles.length).toBeGreaterThan(3);
    expect(Math.max(...observationFiles.map((o) => o.count))).toBeLessThanOrEqual(300);
  });

  it('exports only the listed types for _type (repeated and comma lists joined)', async () => {
    const statusUrl = await kickOff(stack, '?_type=Patient,Encounter&_type=Group');
    const { manifest } = await pollUntilDone(statusUrl);
    const { keys } = await downloadAll(manifest);
    expect(keys.sort()).toEqual(asKeys(expected, (t) => ['Patient', 'Encounter', 'Group'].includes(t)));
  });

  it('applies _since and _until around a later batch of writes', async () => {
    const before = new Map(expected);
    const t1 = await stack.store.snapshotTime();
    const later = new Map<string, string>();
    record(later, await stack.store.write([
      { op: 'put', resource: { resourceType: 'Patient', id: 'since-1', active: true } },
      { op: 'put', resource: { resourceType: 'Observation', id: 'since-2', status: 'final', code: { text: 'pulse' }, subject: { reference: 'Patient/since-1' } } },
    ]));
    record(expected, [...later].map(([key, versionId]) => ({ resourceType: key.split('/')[0], id: key.split('/')[1], versionId, outcome: 'created' as const })));

    const sinceParam = encodeURIComponent(t1.replace('Z', '+00:00'));
    const since = await downloadAll((await pollUntilDone(await kickOff(stack, `?_since=${sinceParam}`))).manifest);
    expect(since.keys.sort()).toEqual(asKeys(later));

    const until = await downloadAll((await pollUntilDone(await kickOff(stack, `?_until=${encodeURIComponent(t1)}`))).manifest);
    expect(until.keys.sort()).toEqual(asKeys(before));
  });

  it('reads a _since with a zone offset as the same instant', async () => {
    const t1 = await stack.store.snapshotTime();
    const later = new Map<string, string>();
    record(later, await stack.store.write([{ op: 'put', resource: { resourceType: 'Patient', id: 'offset-1', active: false } }]));
    record(expected, [...later].map(([key, versionId]) => ({ resourceType: key.split('/')[0], id: key.split('/')[1], versionId, outcome: 'created' as const })));
    // t1 written five hours west of UTC: the same instant, so only the later write is exported.
    const west = new Date(Date.parse(t1) - 5 * 3600_000).toISOString().replace('Z', '-05:00');
    const { manifest } = await pollUntilDone(await kickOff(stack, `?_since=${encodeURIComponent(west)}`));
    expect((await downloadAll(manifest)).keys.sort()).toEqual(asKeys(later));
  });

  it('lists resources deleted after _since under deleted (transaction Bundles of DELETEs), never in output', async () => {
    const t1 = await stack.store.snapshotTime();
    const goneObservation = [...expected.keys()].find((k) => k.startsWith('Observation/'))!;
    const goneEncounter = [...expected.keys()].find((k) => k.startsWith('Encounter/'))!;
    const [keptType, keptId] = [...expected.keys()].find((k) => k.startsWith('Condition/'))!.split('/');
    const results = await stack.store.write([
      { op: 'delete', resourceType: 'Observation', id: goneObservation.split('/')[1] },
      { op: 'delete', resourceType: 'Encounter', id: goneEncounter.split('/')[1] },
      { op: 'put', resource: { resourceType: 'Practitioner', id: 'born-and-gone' } },
      { op: 'put', resource: { ...JSON.parse((await stack.store.read(keptType, keptId))!.body!), note: [{ text: 'edited' }] } },
    ]);
    await stack.store.write([{ op: 'delete', resourceType: 'Practitioner', id: 'born-and-gone' }]);
    record(expected, results);
    expected.delete('Practitioner/born-and-gone');

    const { manifest } = await pollUntilDone(await kickOff(stack, `?_since=${encodeURIComponent(t1)}`));
    expect((await downloadDeleted(manifest)).sort()).toEqual([goneEncounter, goneObservation, 'Practitioner/born-and-gone'].sort());
    expect(manifest.deleted!.every((d) => /\/bulkfiles\/.+-deleted-\d{4}-\d{4}\.ndjson$/.test(d.url))).toBe(true);
    const { keys } = await downloadAll(manifest);
    expect(keys).toEqual([`${keptType}/${keptId}/${expected.get(`${keptType}/${keptId}`)}`]);

    // _type narrows the deletions too; without _since there is no deleted array.
    const narrowed = (await pollUntilDone(await kickOff(stack, `?_type=Encounter&_since=${encodeURIComponent(t1)}`))).manifest;
    expect(await downloadDeleted(narrowed)).toEqual([goneEncounter]);
    const full = (await pollUntilDone(await kickOff(stack, '?_type=Encounter'))).manifest;
    expect(full.deleted).toBeUndefined();
  });

  it('keeps only the _elements asked for plus mandatory ones, tagged SUBSETTED; other types stay whole', async () => {
    const { manifest } = await pollUntilDone(await kickOff(stack, '?_type=Observation,Encounter&_elements=Observation.valueQuantity,Observation.subject'));
    const { keys, byFile } = await downloadAll(manifest);
    expect(keys.sort()).toEqual(asKeys(expected, (t) => ['Observation', 'Encounter'].includes(t)));
    const observations = byFile.filter((f) => f.type === 'Observation').flatMap((f) => f.lines) as Array<Record<string, unknown> & { meta: { tag?: unknown[] } }>;
    expect(observations.length).toBeGreaterThan(0);
    for (const o of observations) {
      // status and code are 1..1 in R4, so they stay: the subset is still a valid Observation.
      expect(Object.keys(o).every((k) => ['resourceType', 'id', 'meta', 'status', 'code', 'subject', 'valueQuantity'].includes(k))).toBe(true);
      expect(o.status).toBeDefined();
      expect(o.code).toBeDefined();
      expect(o.meta.tag).toContainEqual({ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'subsetted' });
    }
    expect(observations.some((o) => o.valueQuantity !== undefined)).toBe(true);
    const encounters = byFile.filter((f) => f.type === 'Encounter').flatMap((f) => f.lines) as Array<{ meta: { tag?: unknown[] }; period?: unknown }>;
    expect(encounters.every((e) => e.period !== undefined && !e.meta.tag)).toBe(true);
  });

  it('advertises $export at three levels in /metadata, each definition readable at OperationDefinition/{id}', async () => {
    const capability = (await (await fetch(`${stack.fhir}/metadata`)).json()) as {
      instantiates: string[];
      rest: Array<{ mode: string; operation: Array<{ name: string; definition: string }>; resource: Array<{ type: string; operation?: Array<{ name: string; definition: string }> }> }>;
    };
    expect(capability.instantiates).toEqual(['http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data']);
    expect(capability.rest).toHaveLength(1);
    expect(capability.rest[0].mode).toBe('server');
    // The Bulk Data operations (SQL on FHIR's are listed beside them, under their own canonicals).
    const definitions = [
      ...capability.rest[0].operation,
      ...capability.rest[0].resource.filter((r) => ['Patient', 'Group'].includes(r.type)).flatMap((r) => r.operation ?? []),
    ].filter((d) => d.definition.startsWith('http://hl7.org/fhir/uv/bulkdata/'));
    expect(capability.rest[0].operation.map((o) => o.name)).toEqual(['export', 'export-v4', 'bulk-submit', 'bulk-submit-status', 'import', 'sql-run', 'sqlquery-run', 'sql-export', 'sqlquery-export']);
    const exports = definitions.filter((d) => d.name === 'export');
    expect(exports.map((d) => d.definition.split('/').pop()).sort()).toEqual(['export', 'group-export', 'patient-export']);
    // The STU4 ballot's versions beside each, as `export-v4` (the IG's way to list two versions of one operation).
    const v4 = definitions.filter((d) => d.name === 'export-v4').map((d) => d.definition);
    expect(v4.sort()).toEqual(exports.map((d) => `${d.definition}|4.0.0`).sort());
    for (const { definition } of exports) {
      const res = await fetch(`${stack.fhir}/OperationDefinition/${definition.split('/').pop()}`);
      expect(res.status).toBe(200);
      const served = (await res.json()) as { resourceType: string; url: string; code: string; parameter: Array<{ name: string }> };
      expect(served).toMatchObject({ resourceType: 'OperationDefinition', url: definition, code: 'export' });
      expect(served.parameter.map((p) => p.name)).toEqual(expect.arrayContaining(['_since', '_type', '_elements', '_typeFilter', '_outputFormat']));
    }
    // The receiving side's definitions are served too.
    for (const id of ['bulk-submit', 'bulk-submit-status', 'import']) {
      const listed = capability.rest[0].operation.find((o) => o.name === id)!;
      const served = (await (await fetch(`${stack.fhir}/OperationDefinition/${id}`)).json()) as { url: string; code: string; parameter: Array<{ name: string }> };
      expect([served.url, served.code]).toEqual([listed.definition, id]);
      expect(served.parameter.map((p) => p.name)).toContain(id === 'import' ? 'exportUrl' : 'submissionId');
    }
    expect((await fetch(`${stack.fhir}/OperationDefinition/nope`)).status).toBe(404);

    // Every stored type is listed with the search parameters _typeFilter and searches accept.
    const observation = (capability.rest[0].resource as Array<{ type: string; searchParam?: Array<{ name: string; type: string }> }>).find((r) => r.type === 'Observation')!;
    expect(observation.searchParam).toEqual(expect.arrayContaining([{ name: 'code', type: 'token', definition: 'http://hl7.org/fhir/SearchParameter/clinical-code' }]));
    expect(observation.searchParam!.map((p) => p.name)).toEqual(expect.arrayContaining(['value-quantity', 'date', 'subject', '_lastUpdated', '_id']));
    expect(observation.searchParam!.some((p) => p.type === 'composite')).toBe(false);
  });

  it('serves files gzipped only when asked, resumable by range otherwise, and 404s unknown or malicious file names', async () => {
    const { manifest } = await pollUntilDone(await kickOff(stack, '?_type=Patient'));
    const url = manifest.output[0].url;
    const plain = await fetch(url, { headers: { 'Accept-Encoding': 'identity' } });
    expect(plain.headers.get('content-type')).toMatch(/^application\/fhir\+ndjson/);
    expect(plain.headers.get('content-encoding')).toBeNull();
    const plainText = await plain.text();

    const http = await import('node:http');
    const gzipped: Buffer = await new Promise((resolve, reject) => {
      http.get(url, { headers: { 'Accept-Encoding': 'gzip' } }, (res) => {
        expect(res.headers['content-encoding']).toBe('gzip');
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
      });
    });
    expect(gunzipSync(gzipped).toString('utf8')).toBe(plainText);
    await expectRangeResume(url);

    for (const bad of ['Nope-0000-0000.ndjson', '..%2F..%2Fetc%2Fpasswd', '..%2Fx.ndjson', 'x.txt']) {
      const res = await fetch(url.replace(/[^/]+$/, bad));
      expect(res.status).toBe(404);
      expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    }
  });

  it('deletes the files on DELETE after completion, then answers 404 with an OperationOutcome', async () => {
    const statusUrl = await kickOff(stack, '?_type=Patient');
    const { manifest } = await pollUntilDone(statusUrl);
    const exportId = statusUrl.split('/').pop()!;
    expect(await stack.output.list(`${stack.store.tenant}/${exportId}/`)).not.toEqual([]);

    const res = await fetch(statusUrl, { method: 'DELETE' });
    expect(res.status).toBe(202);
    await waitFor(async () => (await stack.output.list(`${stack.store.tenant}/${exportId}/`)).length === 0);
    const after = await fetch(statusUrl);
    expect(after.status).toBe(404);
    const outcome = (await after.json()) as { resourceType: string; issue: Array<{ severity: string; code: string }> };
    expect(outcome).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
    expect((await fetch(manifest.output[0].url)).status).toBe(404);
  });

  it('keeps a resource updated and one deleted after transactionTime as they were at transactionTime', async () => {
    const snapshot = new Map(expected);
    const patientKey = [...expected.keys()].find((k) => k.startsWith('Patient/'))!;
    const encounterKey = [...expected.keys()].find((k) => k.startsWith('Encounter/'))!;
    // Mutate between planning (transactionTime fixed) and reading the partitions.
    // Another stack on the same data, whose worker mutates the store between planning and reading.
    const other = await startExportStack({ settings: { partitionSize: 700 }, tenant: stack.store.tenant });
    try {
      const mutated = new Map(expected);
      const worker = await other.startWorker((real) => ({
        ...real,
        planExport: async (input) => {
          const plan = await real.planExport(input);
          const patient = JSON.parse((await stack.store.read('Patient', patientKey.split('/')[1]))!.body!);
          record(mutated, await stack.store.write([
            { op: 'put', resource: { ...patient, active: false, gender: 'other' } },
            { op: 'delete', resourceType: 'Encounter', id: encounterKey.split('/')[1] },
          ]));
          return plan;
        },
      }));
      const { manifest } = await pollUntilDone(await kickOff(other, '?_type=Patient,Encounter'));
      await worker.stop();
      const { keys } = await downloadAll(manifest);
      expect(keys.sort()).toEqual(asKeys(snapshot, (t) => t === 'Patient' || t === 'Encounter'));
      expect(mutated.get(patientKey)).not.toBe(snapshot.get(patientKey));
      expect(mutated.has(encounterKey)).toBe(false);
      expected.clear();
      for (const [k, v] of mutated) expected.set(k, v);
    } finally {
      await other.close();
    }
  });
});

describe('system-level $export (GCS emulator)', () => {
  let stack: ExportStack;

  beforeAll(async () => {
    stack = await startExportStack({ backend: 'gcs', settings: { partitionSize: 400, maxPartResources: 250 } });
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  it('runs the whole lifecycle on GCS: export, download (resumable by range), delete', async () => {
    const expected = await seed(stack.store, 4, 5);
    const statusUrl = await kickOff(stack);
    const { manifest } = await pollUntilDone(statusUrl);
    const { keys, byFile } = await downloadAll(manifest);
    expect(keys.sort()).toEqual(asKeys(expected));
    byFile.forEach((file, i) => expect(file.lines).toHaveLength(manifest.output[i].count));
    await expectRangeResume(manifest.output[0].url);

    const exportId = statusUrl.split('/').pop()!;
    expect((await stack.output.list(`${stack.store.tenant}/${exportId}/`)).length).toBe(manifest.output.length);
    expect((await fetch(statusUrl, { method: 'DELETE' })).status).toBe(202);
    await waitFor(async () => (await stack.output.list(`${stack.store.tenant}/${exportId}/`)).length === 0);
    expect((await fetch(statusUrl)).status).toBe(404);
  });
});

describe('export lifecycle without a worker, expiry and bad requests', () => {
  let stack: ExportStack;

  beforeAll(async () => {
    stack = await startExportStack({ settings: { retentionMs: 1500 } });
    await stack.store.write([{ op: 'put', resource: { resourceType: 'Patient', id: 'solo' } }]);
  });
  afterAll(() => stack.close());

  it('answers 202 with Retry-After and an empty body while no worker runs, and DELETE then 404s', async () => {
    const statusUrl = await kickOff(stack, '', { ...kickoffHeaders, Authorization: 'Bearer ' });
    const res = await fetch(statusUrl);
    expect(res.status).toBe(202);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(res.headers.get('x-progress')).toBeTruthy();
    expect(await res.text()).toBe('');

    expect((await fetch(statusUrl, { method: 'DELETE' })).status).toBe(202);
    await waitFor(async () => (await fetch(statusUrl)).status === 404);
  });

  it('deletes the files when they expire and then answers 404', async () => {
    const worker = await stack.startWorker();
    try {
      const statusUrl = await kickOff(stack);
      const { manifest } = await pollUntilDone(statusUrl);
      expect(manifest.output).toHaveLength(1);
      const exportId = statusUrl.split('/').pop()!;
      await waitFor(async () => (await fetch(statusUrl)).status === 404, 20_000);
      expect(await stack.output.list(`${stack.store.tenant}/${exportId}/`)).toEqual([]);
    } finally {
      await worker.stop();
    }
  });

  it('answers 404 for unknown and malformed job ids', async () => {
    for (const id of ['AAAAAAAAAAAAAAAAAAAAAA', 'not-an-id', 'x'.repeat(40), 'a%27%3B--']) {
      const res = await fetch(`${stack.fhir}/bulkstatus/${id}`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    }
  });

  const badKickoffs: Array<[string, string, Record<string, string>, string]> = [
    ['no Accept header', '', { Prefer: 'respond-async' }, 'Accept'],
    ['a wrong Accept header', '', { Accept: 'text/html', Prefer: 'respond-async' }, 'Accept'],
    ['no Prefer header', '', { Accept: 'application/fhir+json' }, 'Prefer'],
    ['an unknown _type', '?_type=Patient,Spaceship', kickoffHeaders, '_type'],
    ['a malformed _since', '?_since=yesterday', kickoffHeaders, '_since'],
    ['a _since without time zone', '?_since=2024-01-01T00:00:00', kickoffHeaders, '_since'],
    ['_until before _since', '?_since=2024-02-01T00:00:00Z&_until=2024-01-01T00:00:00Z', kickoffHeaders, '_until'],
    ['an unsupported _outputFormat', '?_outputFormat=text/csv', kickoffHeaders, '_outputFormat'],
    ['patient at system level', '?patient=Patient/1', kickoffHeaders, 'patient'],
    ['an unknown parameter (strict)', '?_foo=1', { ...kickoffHeaders, Prefer: 'respond-async, handling=strict' }, '_foo'],
    ['an _elements value that is no root element (strict)', '?_elements=Patient.nope', kickoffHeaders, '_elements'],
    ['an _elements path below the root (strict)', '?_elements=Patient.name.family', kickoffHeaders, '_elements'],
  ];
  it.each(badKickoffs)('answers 400 with an OperationOutcome naming the problem for %s', async (_what, query, headers, named) => {
    const res = await fetch(`${stack.fhir}/$export${query}`, { headers });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { resourceType: string; issue: Array<{ diagnostics: string; expression?: string[] }> };
    expect(body.resourceType).toBe('OperationOutcome');
    expect(body.issue[0].expression?.[0] ?? body.issue[0].diagnostics).toContain(named);
  });

  it('accepts every spelling of NDJSON', async () => {
    for (const format of ['application/fhir+ndjson', 'application/ndjson', 'ndjson']) {
      const res = await fetch(`${stack.fhir}/$export?_outputFormat=${encodeURIComponent(format)}`, { headers: kickoffHeaders });
      expect(res.status).toBe(202);
      await fetch(res.headers.get('content-location')!, { method: 'DELETE' });
    }
  });

  it('refuses bad POST bodies with 4xx OperationOutcomes', async () => {
    const post = (body: string, type = 'application/fhir+json') =>
      fetch(`${stack.fhir}/$export`, { method: 'POST', headers: { ...kickoffHeaders, 'Content-Type': type }, body });
    expect((await post('{"resourceType":"Patient"}')).status).toBe(400);
    expect((await post('{oops')).status).toBe(400);
    expect((await post('_type=Patient', 'application/x-www-form-urlencoded')).status).toBe(415);
    const bad = await post(JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: '_type', valueString: 'Nope' }] }));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { issue: Array<{ expression: string[] }> }).issue[0].expression).toEqual(['_type']);
  });

  it('takes a POST Parameters kick-off (application/json, repeated _type) and reports lenient-ignored parameters in error', async () => {
    const worker = await stack.startWorker();
    try {
      const res = await fetch(`${stack.fhir}/$export`, {
        method: 'POST',
        headers: { Accept: 'application/fhir+json', Prefer: 'respond-async, handling=lenient', 'Content-Type': 'application/json' },
        body: JSON.stringify({
          resourceType: 'Parameters',
          parameter: [
            { name: '_type', valueString: 'Patient' },
            { name: '_type', valueString: 'Observation' },
            { name: '_elements', valueString: 'Patient.nope' },
          ],
        }),
      });
      expect(res.status).toBe(202);
      const { manifest } = await pollUntilDone(res.headers.get('content-location')!);
      expect(manifest.output.map((o) => o.type)).toEqual(['Patient']);
      expect(manifest.error).toHaveLength(1);
      const errors = await (await fetch(manifest.error[0].url)).text();
      const outcome = JSON.parse(errors.trim());
      expect(outcome.resourceType).toBe('OperationOutcome');
      expect(outcome.issue[0].expression).toEqual(['_elements']);
    } finally {
      await worker.stop();
    }
  });
});
