/**
 * `$sql-run` and stored ViewDefinitions on the real stack (PostgreSQL store, SMART
 * authorization on): views stored, searched and refused like resources; runs over the store at
 * one snapshot scoped by patient, group and `_since`; every format; the earlier
 * `$viewdefinition-run` names; read access on the view's type; every bad request a 4xx.
 */
import { generatePopulation } from '../../src/generate/population';
import type { FhirResourceJson } from '../../src/fhir/resource-validation';
import { bearer, SmartClients } from '../support/smart-clients';
import { startExportStack, type ExportStack } from '../support/export-stack';
import { readParquetRows } from '../support/parquet';

const observationView = {
  resourceType: 'ViewDefinition',
  url: 'https://bulkflow.example/views/observations',
  version: '1',
  name: 'observation_flat',
  status: 'active',
  resource: 'Observation',
  select: [
    {
      column: [
        { name: 'id', path: 'getResourceKey()' },
        { name: 'patient', path: 'subject.getReferenceKey(Patient)' },
        { name: 'code', path: 'code.coding.first().code' },
        { name: 'value', path: 'value.ofType(Quantity).value' },
      ],
    },
  ],
};

describe('$sql-run and stored ViewDefinitions', () => {
  let stack: ExportStack;
  let all: Record<string, string>;
  let patientsOnly: Record<string, string>;
  let population: FhirResourceJson[];
  let groupId: string;
  let viewId: string;

  const post = (path: string, body: unknown, headers = all) =>
    fetch(`${stack.fhir}${path}`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/fhir+json' }, body: JSON.stringify(body) });
  const get = (path: string, headers = all) => fetch(`${stack.fhir}${path}`, { headers });
  const parameters = (...parameter: unknown[]) => ({ resourceType: 'Parameters', parameter });
  const observationsOf = (patient?: string) =>
    population.filter((r) => r.resourceType === 'Observation' && (!patient || (r.subject as { reference: string }).reference === `Patient/${patient}`));

  beforeAll(async () => {
    stack = await startExportStack({ auth: true });
    const smart = new SmartClients(stack);
    const everything = await smart.register('views-all', 'ES384', ['system/*.cruds']);
    const patients = await smart.register('views-patients', 'ES384', ['system/Patient.rs', 'system/ViewDefinition.rs']);
    all = bearer(await smart.tokenFor(everything, 'system/*.cruds'));
    patientsOnly = bearer(await smart.tokenFor(patients, 'system/Patient.rs system/ViewDefinition.rs'));
    population = [...generatePopulation({ patients: 4, seed: 44 })];
    groupId = population.find((r) => r.resourceType === 'Group')!.id!;
    await stack.store.write(population.map((resource) => ({ op: 'put' as const, resource })));
  });
  afterAll(() => stack.close());

  it('stores a ViewDefinition like any resource, finds it by url, name and resource, and lists it in the CapabilityStatement', async () => {
    const created = await post('/ViewDefinition', observationView);
    expect(created.status).toBe(201);
    viewId = ((await created.json()) as { id: string }).id;
    for (const query of [`url=${encodeURIComponent(observationView.url)}`, 'name=observation_flat', 'resource=Observation']) {
      const bundle = (await (await get(`/ViewDefinition?${query}`)).json()) as { total: number; entry: { resource: { id: string } }[] };
      expect(bundle.total).toBe(1);
      expect(bundle.entry[0].resource.id).toBe(viewId);
    }
    expect(((await (await get('/ViewDefinition?resource=Patient')).json()) as { total: number }).total).toBe(0);
    const metadata = (await (await fetch(`${stack.fhir}/metadata`)).json()) as { rest: { resource: { type: string; operation?: { name: string }[] }[]; operation: { name: string }[] }[] };
    expect(metadata.rest[0].resource.find((r) => r.type === 'ViewDefinition')?.operation?.map((o) => o.name)).toEqual(['viewdefinition-run', 'viewdefinition-export']);
    expect(metadata.rest[0].operation.map((o) => o.name)).toEqual(expect.arrayContaining(['sql-run', 'sql-export', 'sqlquery-run', 'sqlquery-export']));
    expect(metadata.rest[0].resource.find((r) => r.type === 'Library')?.operation?.map((o) => o.name)).toEqual(['sqlquery-run', 'sqlquery-export']);
    // The definitions list the SQL forms: a Library subject, its parameters and context, fhir output.
    for (const id of ['sql-run', 'sql-export']) {
      const res = await fetch(`${stack.fhir}/OperationDefinition/${id}`);
      expect(res.status).toBe(200);
      const definition = (await res.json()) as { url: string; code: string; parameter: Array<{ name: string; documentation: string; part?: Array<{ name: string }> }> };
      expect(definition).toMatchObject({ url: `http://sql-on-fhir.org/OperationDefinition/$${id}`, code: id });
      const names = definition.parameter.flatMap((p) => [p.name, ...(p.part ?? []).map((q) => `${p.name}.${q.name}`)]);
      expect(names).toEqual(expect.arrayContaining(['context', 'patient', 'group', '_since', ...(id === 'sql-run' ? ['subjectResource', 'parameters', '_limit'] : ['subject.subjectCanonical', 'subject.parameters', 'clientTrackingId'])]));
      expect(JSON.stringify(definition)).toContain('SQLQuery');
    }
    expect(JSON.stringify(await (await fetch(`${stack.fhir}/OperationDefinition/sql-run`)).json())).toContain('fhir (a Parameters of typed rows');
  });

  it('refuses to store a view that cannot run: 400 for structure, 422 for FHIRPath, both as OperationOutcomes', async () => {
    const structural = await post('/ViewDefinition', { resourceType: 'ViewDefinition', select: [] });
    expect(structural.status).toBe(400);
    expect(((await structural.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    const fhirpath = await post('/ViewDefinition', { ...observationView, select: [{ column: [{ name: 'x', path: 'code.(' }] }] });
    expect(fhirpath.status).toBe(422);
    expect(JSON.stringify(await fhirpath.json())).toContain('select[0].column[0].path');
  });

  it('runs a stored view over the store by reference, canonical and URL id, every row once', async () => {
    const expected = observationsOf().map((o) => o.id).sort();
    for (const answer of [
      await post('/$sql-run', parameters({ name: 'subjectReference', valueReference: { reference: `ViewDefinition/${viewId}` } })),
      await get(`/$sql-run?subjectCanonical=${encodeURIComponent(`${observationView.url}|1`)}`),
      await post(`/ViewDefinition/${viewId}/$viewdefinition-run`, parameters()),
      await post('/ViewDefinition/$viewdefinition-run', parameters({ name: 'viewReference', valueReference: { reference: `ViewDefinition/${viewId}` } })),
    ]) {
      expect(answer.status).toBe(200);
      const rows = (await answer.json()) as { id: string; patient: string; code: string }[];
      expect(rows.map((r) => r.id).sort()).toEqual(expected);
      expect(Object.keys(rows[0])).toEqual(['id', 'patient', 'code', 'value']);
    }
  });

  it('scopes by patient, group and _since, and stops at _limit', async () => {
    const patient = population.find((r) => r.resourceType === 'Patient')!.id!;
    const run = async (...extra: unknown[]) => (await (await post('/$sql-run', parameters({ name: 'subjectResource', resource: observationView }, ...extra))).json()) as { id: string; patient: string }[];
    const mine = await run({ name: 'patient', valueReference: { reference: `Patient/${patient}` } });
    expect(mine.map((r) => r.id).sort()).toEqual(observationsOf(patient).map((o) => o.id).sort());
    expect(new Set(mine.map((r) => r.patient))).toEqual(new Set([patient]));
    // A Group of some patients (not all): exactly their observations, by id.
    const members = population.filter((r) => r.resourceType === 'Patient').slice(0, 2).map((p) => p.id!);
    await stack.store.write([{ op: 'put', resource: { resourceType: 'Group', id: 'two-patients', type: 'person', actual: true, member: members.map((m) => ({ entity: { reference: `Patient/${m}` } })) } as FhirResourceJson }]);
    const inGroup = await run({ name: 'group', valueReference: { reference: 'Group/two-patients' } });
    expect(inGroup.map((r) => r.id).sort()).toEqual(members.flatMap((m) => observationsOf(m)).map((o) => o.id).sort());
    expect(inGroup.length).toBeLessThan(observationsOf().length);
    expect((await run({ name: 'group', valueReference: { reference: `Group/${groupId}` } })).length).toBe(observationsOf().length);
    expect(await run({ name: '_limit', valueInteger: 3 })).toHaveLength(3);

    const before = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 20)); // the write's stamp comes strictly after it
    const changed = { ...observationsOf(patient)[0], status: 'amended' };
    await stack.store.write([{ op: 'put', resource: changed }]);
    expect((await run({ name: '_since', valueInstant: before })).map((r) => r.id)).toEqual([changed.id]);
  });

  it('answers NDJSON, CSV (with and without a header) and Parquet with the same rows as JSON', async () => {
    const base = { name: 'subjectResource', resource: observationView };
    const json = (await (await post('/$sql-run', parameters(base))).json()) as Record<string, unknown>[];
    const ndjson = await post('/$sql-run', parameters(base, { name: '_format', valueCode: 'ndjson' }));
    expect(ndjson.headers.get('content-type')).toMatch(/ndjson/);
    const lines = (await ndjson.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual(json);
    const csv = await post('/$sql-run', parameters(base, { name: '_format', valueCode: 'csv' }));
    expect(csv.headers.get('content-type')).toMatch(/text\/csv/);
    const csvLines = (await csv.text()).split('\r\n').filter(Boolean);
    expect(csvLines[0]).toBe('id,patient,code,value');
    expect(csvLines.slice(1).map((l) => l.split(',')[0]).sort()).toEqual(json.map((r) => r.id).sort());
    const bare = await post('/$sql-run', parameters(base, { name: '_format', valueCode: 'csv' }, { name: 'header', valueBoolean: false }));
    expect((await bare.text()).split('\r\n').filter(Boolean)).toHaveLength(json.length);
    const parquet = await post('/$sql-run', parameters(base, { name: '_format', valueCode: 'parquet' }));
    expect(parquet.headers.get('content-type')).toMatch(/parquet/);
    const read = readParquetRows(new Uint8Array(await parquet.arrayBuffer()));
    expect(read.columns.map((c) => c.name)).toEqual(['id', 'patient', 'code', 'value']);
    expect(read.rows.map((r) => JSON.stringify(r)).sort()).toEqual(json.map((r) => JSON.stringify({ ...r, value: r.value === null ? null : String(r.value) })).sort());
  });

  it('answers a run with no rows in Parquet with a file a strict reader reads as no rows', async () => {
    const nothing = { ...observationView, where: [{ path: "status = 'no-such-status'" }] };
    const parquet = await post('/$sql-run', parameters({ name: 'subjectResource', resource: nothing }, { name: '_format', valueCode: 'parquet' }));
    expect(parquet.status).toBe(200);
    const read = readParquetRows(new Uint8Array(await parquet.arrayBuffer()));
    expect(read.columns.map((c) => c.name)).toEqual(['id', 'patient', 'code', 'value']);
    expect(read.rows).toEqual([]);
  });

  it('needs read access to the view\'s resource type, and a token at all', async () => {
    const refused = await post('/$sql-run', parameters({ name: 'subjectResource', resource: observationView }), patientsOnly);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    const patientView = { ...observationView, resource: 'Patient', select: [{ column: [{ name: 'id', path: 'id' }] }] };
    expect((await post('/$sql-run', parameters({ name: 'subjectResource', resource: patientView }), patientsOnly)).status).toBe(200);
    expect((await fetch(`${stack.fhir}/$sql-run?subjectReference=ViewDefinition/${viewId}`)).status).toBe(401);
  });

  it.each([
    ['no subject', parameters(), 400],
    ['an unknown parameter', parameters({ name: 'subjectResource', resource: observationView }, { name: 'source', valueString: 'x' }), 400],
    ['an unknown stored view', parameters({ name: 'subjectReference', valueReference: { reference: 'ViewDefinition/nope' } }), 404],
    ['a view with a bad path', parameters({ name: 'subjectResource', resource: { ...observationView, select: [{ column: [{ name: 'a', path: '((' }] }] } }), 422],
    ['a column with several values', parameters({ name: 'subjectResource', resource: { ...observationView, select: [{ column: [{ name: 'c', path: 'code.coding.code' }] }] } }, { name: 'resource', resource: { resourceType: 'Observation', id: 'x', code: { coding: [{ code: 'a' }, { code: 'b' }] } } }), 422],
    ['a body that is not Parameters', { resourceType: 'Patient' }, 400],
  ])('answers %s with a 4xx OperationOutcome', async (_label, body, status) => {
    const answer = await post('/$sql-run', body);
    expect(answer.status).toBe(status);
    expect(((await answer.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });
});
