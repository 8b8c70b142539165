/**
 * `$sql-run` with SQLQuery subjects on the real stack (PostgreSQL store, SMART authorization on):
 * a Library inline, stored by reference or canonical, its tables from stored or `context`
 * ViewDefinitions, its parameters bound; scoped by patient; `_limit`; read access on every
 * table's type; and every bad or hostile request a 4xx OperationOutcome. Expected rows are
 * counted here from the generated resources, not by the code under test.
 */
import { generatePopulation } from '../../src/generate/population';
import type { FhirResourceJson } from '../../src/fhir/resource-validation';
import { bearer, SmartClients } from '../support/smart-clients';
import { startExportStack, type ExportStack } from '../support/export-stack';
import { readParquetRows } from '../support/parquet';

const SYSTEM = 'http://hl7.org/fhir/uv/sql-on-fhir/CodeSystem/LibraryTypesCodes';
const patientView = {
  resourceType: 'ViewDefinition',
  url: 'https://bulkflow.example/views/patients',
  name: 'patients',
  status: 'active',
  resource: 'Patient',
  select: [{ column: [{ name: 'id', path: 'getResourceKey()' }, { name: 'gender', path: 'gender' }] }],
};
const observationView = {
  resourceType: 'ViewDefinition',
  url: 'https://bulkflow.example/views/observations',
  name: 'observations',
  status: 'active',
  resource: 'Observation',
  select: [{ column: [{ name: 'patient_id', path: 'subject.getReferenceKey(Patient)' }, { name: 'code', path: 'code.coding.first().code' }] }],
};
const library = (sql: string, overrides: Record<string, unknown> = {}) => ({
  resourceType: 'Library',
  url: 'https://bulkflow.example/sql/counts',
  name: 'counts',
  status: 'active',
  type: { coding: [{ system: SYSTEM, code: 'sql-query' }] },
  content: [{ contentType: 'application/sql', data: Buffer.from(sql).toString('base64') }],
  relatedArtifact: [
    { type: 'depends-on', resource: patientView.url, label: 'patients' },
    { type: 'depends-on', resource: observationView.url, label: 'obs' },
  ],
  parameter: [{ name: 'code', type: 'string', use: 'in' }],
  ...overrides,
});
const COUNTS = 'SELECT p.gender, count(*) AS n FROM obs o JOIN patients p ON p.id = o.patient_id WHERE o.code = :code GROUP BY p.gender ORDER BY p.gender';
const HEIGHT = '8302-2';

describe('$sql-run with SQLQuery subjects', () => {
  let stack: ExportStack;
  let all: Record<string, string>;
  let patientsOnly: Record<string, string>;
  let population: FhirResourceJson[];

  const post = (body: unknown, headers = all) =>
    fetch(`${stack.fhir}/$sql-run`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/fhir+json' }, body: JSON.stringify(body) });
  const run = (...parameter: unknown[]) => post({ resourceType: 'Parameters', parameter });
  const codeParameter = (code: string) => ({ name: 'parameters', resource: { resourceType: 'Parameters', parameter: [{ name: 'code', valueString: code }] } });
  /** Observations with `code` per patient gender, counted from the generated resources. */
  const expectedCounts = (code: string, patient?: string) => {
    const gender = new Map(population.filter((r) => r.resourceType === 'Patient').map((p) => [p.id!, p.gender as string]));
    const counts = new Map<string, number>();
    for (const o of population.filter((r) => r.resourceType === 'Observation')) {
      const subject = (o.subject as { reference: string }).reference.split('/')[1];
      if ((o.code as { coding: Array<{ code: string }> }).coding[0].code !== code || (patient && subject !== patient)) continue;
      counts.set(gender.get(subject)!, (counts.get(gender.get(subject)!) ?? 0) + 1);
    }
    return [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([g, n]) => ({ gender: g, n }));
  };

  beforeAll(async () => {
    stack = await startExportStack({ auth: true });
    const smart = new SmartClients(stack);
    all = bearer(await smart.tokenFor(await smart.register('sql-all', 'ES384', ['system/*.cruds']), 'system/*.cruds'));
    const limited = ['system/Patient.rs', 'system/ViewDefinition.rs', 'system/Library.rs'];
    patientsOnly = bearer(await smart.tokenFor(await smart.register('sql-patients', 'ES384', limited), limited.join(' ')));
    population = [...generatePopulation({ patients: 5, seed: 311 })];
    await stack.store.write([...population, patientView, observationView].map((resource) => ({ op: 'put' as const, resource: resource as FhirResourceJson })));
  });
  afterAll(() => stack.close());

  describe('with small caps, as an attacker meets it', () => {
    let capped: ExportStack;
    beforeAll(async () => {
      capped = await startExportStack({ sql: { run: { maxResultRows: 3, maxTableRows: 10, memoryLimit: '64MB', timeoutMs: 2_000 } } });
      await capped.store.write([...population, patientView, observationView].map((resource) => ({ op: 'put' as const, resource: resource as FhirResourceJson })));
    });
    afterAll(() => capped.close());
    /** A query over the tables it names (of patients and obs). */
    const runCapped = (sql: string, ...parameter: unknown[]) => {
      const relatedArtifact = library(sql).relatedArtifact.filter((t) => new RegExp(`\\b${t.label}\\b`).test(sql));
      const subject = library(sql, { parameter: [], relatedArtifact });
      return fetch(`${capped.fhir}/$sql-run`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'subjectResource', resource: subject }, ...parameter] }) });
    };

    it('refuses a result over the row cap before sending any row, naming the cap; _limit under it is served', async () => {
      const patients = population.filter((r) => r.resourceType === 'Patient').length;
      expect(patients).toBeGreaterThan(3);
      expect(patients).toBeLessThanOrEqual(10);
      const res = await runCapped('SELECT id FROM patients');
      expect(res.status).toBe(413);
      const outcome = (await res.json()) as { resourceType: string; issue: Array<{ code: string; diagnostics: string }> };
      expect(outcome.issue[0].code).toBe('too-costly');
      expect(outcome.issue[0].diagnostics).toContain('SQL_RUN_MAX_ROWS');
      const limited = await runCapped('SELECT id FROM patients', { name: '_limit', valueInteger: 2 });
      expect(limited.status).toBe(200);
      expect(((await limited.json()) as unknown[]).length).toBe(2);
    });

    it('refuses a query whose table holds more rows than one table may, naming the cap', async () => {
      expect(population.filter((r) => r.resourceType === 'Observation').length).toBeGreaterThan(10);
      const res = await runCapped('SELECT count(*) AS n FROM obs');
      expect(res.status).toBe(413);
      expect(((await res.json()) as { issue: Array<{ diagnostics: string }> }).issue[0].diagnostics).toContain('SQL_MAX_TABLE_ROWS');
      expect((await runCapped('SELECT count(*) AS n FROM patients')).status).toBe(200); // the small table is fine
    });

    it('sees only the tenant\'s own rows, whatever the SQL tries', async () => {
      const other = `sq${Date.now().toString(36)}`;
      await capped.store.forTenant(other).write([patientView, { resourceType: 'Patient', id: 'other-tenant-patient', gender: 'unknown' }].map((resource) => ({ op: 'put' as const, resource: resource as FhirResourceJson })));
      const ids = async (base: string) => {
        const subject = library("SELECT id FROM patients WHERE id LIKE 'other-%' OR gender = 'unknown'", { parameter: [], relatedArtifact: [library('').relatedArtifact[0]] });
        const res = await fetch(`${base}/$sql-run`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'subjectResource', resource: subject }] }) });
        expect(res.status).toBe(200);
        return ((await res.json()) as Array<{ id: string }>).map((r) => r.id);
      };
      expect(await ids(capped.fhir)).toEqual([]);
      expect(await ids(`${capped.url}/t/${other}/fhir`)).toEqual(['other-tenant-patient']);
      // No way out of the engine to the store: no PostgreSQL scanner, no extension to load.
      for (const sql of ["SELECT * FROM postgres_scan('host=127.0.0.1 dbname=postgres', 'public', 'resources')", "SELECT * FROM duckdb_extensions() WHERE loaded AND extension_name = 'postgres_scanner'"]) {
        const res = await runCapped(sql);
        expect([200, 400, 422]).toContain(res.status);
        if (res.status === 200) expect(await res.json()).toEqual([]);
      }
    });

    it('takes labels that collide with engine functions as the tables they name', async () => {
      const patients = population.filter((r) => r.resourceType === 'Patient').length;
      const relatedArtifact = ['range', 'read_csv', 'duckdb_tables'].map((label) => ({ type: 'depends-on', resource: patientView.url, label }));
      const subject = library('SELECT (SELECT count(*) FROM range) AS a, (SELECT count(*) FROM read_csv) AS b, (SELECT count(*) FROM duckdb_tables) AS c', { parameter: [], relatedArtifact });
      const res = await fetch(`${capped.fhir}/$sql-run`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'subjectResource', resource: subject }] }) });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual([{ a: patients, b: patients, c: patients }]);
      // Called as functions they are still the engine's, and still read no file.
      const reader = library("SELECT * FROM read_csv('/etc/passwd')", { parameter: [], relatedArtifact });
      const refused = await fetch(`${capped.fhir}/$sql-run`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'subjectResource', resource: reader }] }) });
      expect(refused.status).toBe(400);
      // A word the engine's parser reads as syntax in FROM is no label: the Library is refused, naming it.
      const syntax = library('SELECT * FROM glob', { parameter: [], relatedArtifact: [{ type: 'depends-on', resource: patientView.url, label: 'glob' }] });
      const bad = await fetch(`${capped.fhir}/$sql-run`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'subjectResource', resource: syntax }] }) });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { issue: Array<{ expression: string[] }> }).issue[0].expression).toEqual(['subject.relatedArtifact[0].label']);
    });

    it('ends a cartesian blow-up at its memory limit and a runaway query at its time limit; the next request is served', async () => {
      const blowUp = await runCapped('SELECT list(a.range + b.range) AS l FROM range(10000) a, range(10000) b');
      expect(blowUp.status).toBe(413);
      expect(((await blowUp.json()) as { issue: Array<{ code: string }> }).issue[0].code).toBe('too-costly');
      const started = Date.now();
      const runaway = await runCapped('WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) AS n FROM r');
      expect(runaway.status).toBe(503);
      expect(((await runaway.json()) as { issue: Array<{ code: string }> }).issue[0].code).toBe('timeout');
      expect(Date.now() - started).toBeLessThan(10_000);
      const next = await runCapped('SELECT count(*) AS n FROM patients');
      expect(next.status).toBe(200);
      expect(await next.json()).toEqual([{ n: population.filter((r) => r.resourceType === 'Patient').length }]);
    });
  });

  it('runs an inline SQLQuery over stored views with a bound parameter: counts per gender equal the data\'s', async () => {
    const res = await run({ name: 'subjectResource', resource: library(COUNTS) }, codeParameter(HEIGHT));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const rows = (await res.json()) as Array<{ gender: string; n: number }>;
    expect(rows).toEqual(expectedCounts(HEIGHT));
    const heights = population.filter((r) => r.resourceType === 'Observation' && (r.code as { coding: Array<{ code: string }> }).coding[0].code === HEIGHT).length;
    expect(rows.reduce((n, r) => n + r.n, 0)).toBe(heights); // the join neither lost nor multiplied rows
  });

  it('runs a stored Library by reference and by canonical, as CSV, narrowed to one patient', async () => {
    const stored = await fetch(`${stack.fhir}/Library`, { method: 'POST', headers: { ...all, 'Content-Type': 'application/fhir+json' }, body: JSON.stringify(library(COUNTS)) });
    expect(stored.status).toBe(201);
    const id = stored.headers.get('location')!.split('/Library/')[1].split('/')[0];
    // Stored Libraries are found by url, name, version and type, like any resource.
    const other = await fetch(`${stack.fhir}/Library`, { method: 'POST', headers: { ...all, 'Content-Type': 'application/fhir+json' }, body: JSON.stringify(library(COUNTS, { url: 'https://bulkflow.example/sql/other', name: 'other', version: '2', type: { coding: [{ system: SYSTEM, code: 'sql-view' }] } })) });
    expect(other.status).toBe(201);
    const found = async (query: string) => ((await (await fetch(`${stack.fhir}/Library?${query}`, { headers: all })).json()) as { entry?: Array<{ resource: { id: string; name: string } }> }).entry?.map((e) => e.resource.name) ?? [];
    expect(await found(`url=${encodeURIComponent('https://bulkflow.example/sql/counts')}`)).toEqual(['counts']);
    expect(await found('name=other')).toEqual(['other']);
    expect(await found('version=2')).toEqual(['other']);
    expect(await found(`type=${encodeURIComponent(`${SYSTEM}|sql-view`)}`)).toEqual(['other']);
    expect((await found('type=sql-query')).sort()).toEqual(['counts']);
    const patient = population.find((r) => r.resourceType === 'Patient')!;
    const byReference = await run({ name: 'subjectReference', valueReference: { reference: `Library/${id}` } }, codeParameter(HEIGHT), { name: '_format', valueCode: 'csv' }, { name: 'patient', valueReference: { reference: `Patient/${patient.id}` } });
    expect(byReference.status).toBe(200);
    const [{ gender, n }] = expectedCounts(HEIGHT, patient.id);
    expect(await byReference.text()).toBe(`gender,n\r\n${gender},${n}\r\n`);
    const byCanonical = await run({ name: 'subjectCanonical', valueCanonical: 'https://bulkflow.example/sql/counts' }, codeParameter('29463-7'), { name: '_format', valueCode: 'ndjson' });
    expect(byCanonical.status).toBe(200);
    expect((await byCanonical.text()).trim().split('\n').map((l) => JSON.parse(l))).toEqual(expectedCounts('29463-7'));
  });

  it('takes a table from context before the store, and applies _limit to the result', async () => {
    const onlyFemales = { ...patientView, select: [{ column: patientView.select[0].column, where: [{ path: "gender = 'female'" }] }] };
    const withWhere = { ...onlyFemales, where: [{ path: "gender = 'female'" }], select: patientView.select };
    const res = await run({ name: 'subjectResource', resource: library(COUNTS) }, codeParameter(HEIGHT), { name: 'context', resource: withWhere });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(expectedCounts(HEIGHT).filter((r) => r.gender === 'female'));
    const limited = await run({ name: 'subjectResource', resource: library('SELECT * FROM obs', { parameter: [] }) }, { name: '_limit', valueInteger: 3 });
    expect(((await limited.json()) as unknown[]).length).toBe(3);
  });

  it.each([
    ['an undeclared parameter', [{ name: 'parameters', resource: { resourceType: 'Parameters', parameter: [{ name: 'code', valueString: 'x' }, { name: 'other', valueString: 'y' }] } }], 400, 'invalid'],
    ['a missing parameter', [], 400, 'invalid'],
    ['a parameter of the wrong type', [{ name: 'parameters', resource: { resourceType: 'Parameters', parameter: [{ name: 'code', valueInteger: 1 }] } }], 400, 'invalid'],
    ['a context without url', [codeParameter(HEIGHT), { name: 'context', resource: { ...patientView, url: undefined } }], 400, 'invalid'],
    ['a context no table names', [codeParameter(HEIGHT), { name: 'context', resource: { ...patientView, url: 'https://bulkflow.example/views/unused' } }], 400, 'invalid'],
    ['resource parts', [codeParameter(HEIGHT), { name: 'resource', resource: { resourceType: 'Patient', id: 'x' } }], 400, 'invalid'],
  ])('refuses %s with a 4xx OperationOutcome', async (_what, extra, status, code) => {
    const res = await run({ name: 'subjectResource', resource: library(COUNTS) }, ...(extra as unknown[]));
    expect(res.status).toBe(status);
    const outcome = (await res.json()) as { resourceType: string; issue: Array<{ code: string }> };
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0].code).toBe(code);
  });

  it('refuses parameters and context with a ViewDefinition subject', async () => {
    expect((await run({ name: 'subjectResource', resource: patientView }, codeParameter(HEIGHT))).status).toBe(400);
    expect((await run({ name: 'subjectResource', resource: patientView }, { name: 'context', resource: observationView })).status).toBe(400);
  });

  it.each([
    ['a second statement', 'SELECT 1; DROP TABLE obs', 400],
    ['COPY', "COPY obs TO 'stolen.csv'", 400],
    ['a file reader', "SELECT * FROM read_csv('/etc/passwd')", 400],
    ['ATTACH', "ATTACH 'x.db'", 400],
    ['SET', 'SET enable_external_access = true', 400],
    ['a syntax error', 'SELEC * FROM obs', 422],
    ['an unknown table', 'SELECT * FROM resource_versions', 400],
  ])('refuses %s as the store stays untouched', async (_what, sql, status) => {
    const res = await run({ name: 'subjectResource', resource: library(sql, { parameter: [] }) });
    expect(res.status).toBe(status);
    expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });

  it('treats an injected parameter value as data', async () => {
    const res = await run({ name: 'subjectResource', resource: library(COUNTS) }, codeParameter("8302-2' OR '1'='1"));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([]);
    expect((await run({ name: 'subjectResource', resource: library(COUNTS) }, codeParameter(HEIGHT))).status).toBe(200); // the tables are still there
  });

  it('answers _format=fhir with a Parameters of rows typed by the SQL, and refuses a column no FHIR type holds', async () => {
    const sql = "SELECT p.gender, count(*) AS n, count(*)::INTEGER AS small, avg(length(p.id))::DOUBLE AS avg_len, NULL::VARCHAR AS nothing, DATE '2020-02-29' AS d, true AS yes FROM patients p GROUP BY p.gender ORDER BY p.gender";
    const res = await run({ name: 'subjectResource', resource: library(sql, { parameter: [] }) }, { name: '_format', valueCode: 'fhir' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+json/);
    const body = (await res.json()) as { resourceType: string; parameter: Array<{ name: string; part: Array<Record<string, unknown>> }> };
    expect(body.resourceType).toBe('Parameters');
    const patients = population.filter((r) => r.resourceType === 'Patient');
    const genders = [...new Set(patients.map((p) => p.gender as string))].sort();
    expect(body.parameter.map((p) => p.name)).toEqual(genders.map(() => 'row'));
    body.parameter.forEach((row, i) => {
      const n = patients.filter((p) => p.gender === genders[i]).length;
      expect(row.part).toEqual([
        { name: 'gender', valueString: genders[i] },
        { name: 'n', valueInteger64: String(n) },
        { name: 'small', valueInteger: n },
        { name: 'avg_len', valueDecimal: expect.any(Number) },
        { name: 'd', valueDate: '2020-02-29' },
        { name: 'yes', valueBoolean: true },
      ]); // the NULL column has no part
    });
    const nested = await run({ name: 'subjectResource', resource: library('SELECT list(id) AS ids FROM patients', { parameter: [] }) }, { name: '_format', valueCode: 'fhir' });
    expect(nested.status).toBe(422);
    const outcome = (await nested.json()) as { issue: Array<{ diagnostics: string; expression: string[] }> };
    expect(outcome.issue[0].expression).toEqual(['ids']);
  });

  it('answers _format=parquet with columns typed by the SQL result', async () => {
    const res = await run({ name: 'subjectResource', resource: library(COUNTS) }, codeParameter(HEIGHT), { name: '_format', valueCode: 'parquet' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.apache.parquet');
    const { columns, rows } = readParquetRows(new Uint8Array(await res.arrayBuffer()));
    expect(columns.map((c) => `${c.name}:${c.type}`)).toEqual(['gender:Utf8', 'n:Int64']);
    expect(rows).toEqual(expectedCounts(HEIGHT));
  });

  it('answers the $sqlquery-run names: system, Library and Library/{id}, with queryResource, queryReference and parameters', async () => {
    const stored = await fetch(`${stack.fhir}/Library`, { method: 'POST', headers: { ...all, 'Content-Type': 'application/fhir+json' }, body: JSON.stringify(library(COUNTS, { url: 'https://bulkflow.example/sql/old-names' })) });
    const id = stored.headers.get('location')!.split('/Library/')[1].split('/')[0];
    const expected = expectedCounts(HEIGHT);
    const body = (...parameter: unknown[]) => JSON.stringify({ resourceType: 'Parameters', parameter: [...parameter, codeParameter(HEIGHT)] });
    const headers = { ...all, 'Content-Type': 'application/fhir+json' };
    for (const [url, subject] of [
      [`${stack.fhir}/$sqlquery-run`, { name: 'queryResource', resource: library(COUNTS) }],
      [`${stack.fhir}/Library/$sqlquery-run`, { name: 'queryReference', valueReference: { reference: `Library/${id}` } }],
      [`${stack.fhir}/Library/${id}/$sqlquery-run`, undefined],
    ] as const) {
      const res = await fetch(url, { method: 'POST', headers, body: subject ? body(subject) : body() });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(expected);
    }
  });

  it('needs read access on the type of every table', async () => {
    const res = await post({ resourceType: 'Parameters', parameter: [{ name: 'subjectResource', resource: library(COUNTS) }, codeParameter(HEIGHT)] }, patientsOnly);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { issue: Array<{ diagnostics: string }> }).issue[0].diagnostics).toContain('Observation');
  });
});
