/**
 * `$sql-export` with SQLQuery subjects on the real stack: SQL subjects beside a view in one job
 * at one snapshot (while writes go on), stored and inline Libraries, parameters, `context`,
 * Parquet typed by the SQL, the `$sqlquery-export` name; a SQL error refused at kick-off; a
 * runaway query stopped by its time limit; a DELETE that interrupts a running query; a worker
 * killed with SIGKILL in the middle of a SQL subject. Expected rows are computed here from the
 * generated resources, not by the code under test.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { generatePopulation } from '../../src/generate/population';
import type { FhirResourceJson } from '../../src/fhir/resource-validation';
import type { ExportedSqlSubject, ViewExportInput } from '../../src/contracts/view-export';
import { readParquetRows } from '../support/parquet';
import { startExportStack, type ExportStack } from '../support/export-stack';
import { completed, downloaded } from '../support/view-exports';
import { startWorkerProcess } from '../support/worker-process';

const SYSTEM = 'http://hl7.org/fhir/uv/sql-on-fhir/CodeSystem/LibraryTypesCodes';
const patientView = {
  resourceType: 'ViewDefinition',
  url: 'https://bulkflow.example/views/sq-patients',
  name: 'patients',
  status: 'active',
  resource: 'Patient',
  select: [{ column: [{ name: 'id', path: 'getResourceKey()' }, { name: 'gender', path: 'gender' }, { name: 'birth_date', path: 'birthDate', type: 'date' }] }],
};
const observationView = {
  resourceType: 'ViewDefinition',
  url: 'https://bulkflow.example/views/sq-observations',
  name: 'observations',
  status: 'active',
  resource: 'Observation',
  select: [{ column: [{ name: 'id', path: 'getResourceKey()' }, { name: 'patient_id', path: 'subject.getReferenceKey(Patient)' }, { name: 'code', path: 'code.coding.first().code' }] }],
};
const tables = [
  { type: 'depends-on', resource: patientView.url, label: 'patients' },
  { type: 'depends-on', resource: observationView.url, label: 'obs' },
];
const library = (name: string, sql: string, overrides: Record<string, unknown> = {}) => ({
  resourceType: 'Library',
  url: `https://bulkflow.example/sql/${name}`,
  name,
  status: 'active',
  type: { coding: [{ system: SYSTEM, code: 'sql-query' }] },
  content: [{ contentType: 'application/sql', data: Buffer.from(sql).toString('base64') }],
  relatedArtifact: tables,
  ...overrides,
});
const COUNTS = 'SELECT p.gender, o.code, count(*) AS n FROM obs o JOIN patients p ON p.id = o.patient_id GROUP BY ALL ORDER BY ALL';
const EVERY_ROW = 'SELECT o.id, o.code, p.birth_date FROM obs o JOIN patients p ON p.id = o.patient_id';
const RUNAWAY = 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) AS n FROM r';

type Row = Record<string, unknown>;
type Json = Record<string, unknown>;
const sorted = (rows: Row[]) => rows.map((r) => JSON.stringify(r)).sort();

describe('$sql-export with SQL subjects', () => {
  let stack: ExportStack;
  const workers: ChildProcess[] = [];
  const parameters = (...parameter: unknown[]) => ({ resourceType: 'Parameters', parameter });
  const subject = (name: string, ...parts: unknown[]) => ({ name: 'subject', part: [{ name: 'name', valueString: name }, ...parts] });
  const kickOff = (body: unknown, operation = '$sql-export') =>
    fetch(`${stack.fhir}/${operation}`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json', Prefer: 'respond-async' }, body: JSON.stringify(body) });
  const started = async (body: unknown, operation?: string) => {
    const res = await kickOff(body, operation);
    if (res.status !== 202) throw new Error(`kick-off answered ${res.status}: ${await res.text()}`);
    return res.headers.get('content-location')!;
  };

  /** The store's current resources of a type. */
  async function currentOf(type: string): Promise<FhirResourceJson[]> {
    const out: FhirResourceJson[] = [];
    for await (const rows of stack.store.currentResources(type, await stack.store.snapshotTime())) for (const r of rows) out.push(JSON.parse(r.body.toString('utf8')) as FhirResourceJson);
    return out;
  }
  /** Each observation with its patient's gender and birth date, from the resources. */
  const joined = (patients: FhirResourceJson[], observations: FhirResourceJson[]) => {
    const byId = new Map(patients.map((p) => [p.id!, p]));
    return observations.flatMap((o) => {
      const patient = byId.get((o.subject as { reference: string }).reference.split('/')[1]);
      return patient ? [{ id: o.id!, code: (o.code as { coding: Array<{ code: string }> }).coding[0].code, gender: patient.gender as string, birth_date: (patient.birthDate as string) ?? null }] : [];
    });
  };
  const countsOf = (rows: Array<{ gender: string; code: string }>) => {
    const counts = new Map<string, number>();
    for (const r of rows) counts.set(`${r.gender}|${r.code}`, (counts.get(`${r.gender}|${r.code}`) ?? 0) + 1);
    return [...counts].map(([key, n]) => ({ gender: key.split('|')[0], code: key.split('|')[1], n }));
  };

  beforeAll(async () => {
    stack = await startExportStack({
      settings: { partitionSize: 400, maxPartResources: 500, maxParallelPartitions: 2, heartbeatTimeoutMs: 2000, retentionMs: 60_000 },
      retryAfterSeconds: 1,
      sql: { export: { timeoutMs: 15_000 } },
    });
    const population = [...generatePopulation({ patients: 12, seed: 517 })];
    await stack.store.write([...population, patientView, observationView].map((resource) => ({ op: 'put' as const, resource: resource as FhirResourceJson })));
    await stack.startWorker();
  });
  afterAll(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await stack.close();
  });

  it('exports a view and SQL subjects from one snapshot while writes go on: every output agrees, row for row', async () => {
    const stored = await fetch(`${stack.fhir}/Library`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: JSON.stringify(library('every_row', EVERY_ROW)) });
    expect(stored.status).toBe(201);
    const id = stored.headers.get('location')!.split('/Library/')[1].split('/')[0];
    const before = await currentOf('Observation');
    const statusUrl = await started(
      parameters(
        subject('observations', { name: 'subjectCanonical', valueCanonical: observationView.url }),
        subject('counts', { name: 'subjectResource', resource: library('counts', COUNTS) }),
        subject('every_row', { name: 'subjectReference', valueReference: { reference: `Library/${id}` } }),
        { name: '_format', valueCode: 'ndjson' },
      ),
    );
    // Observations keep arriving while the job runs: each output must still see one and the same store.
    let writing = true;
    const patientIds = (await currentOf('Patient')).map((p) => p.id!);
    const writes = (async () => {
      for (let i = 0; writing; i++) {
        const extra = { resourceType: 'Observation', id: `late-${i}`, status: 'final', code: { coding: [{ system: 'http://loinc.org', code: 'late' }] }, subject: { reference: `Patient/${patientIds[i % patientIds.length]}` } };
        await stack.store.write([{ op: 'put', resource: extra as FhirResourceJson }]);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const { body } = await completed(statusUrl);
    writing = false;
    await writes;

    const outputs = await downloaded(body, 'ndjson');
    expect(Object.keys(outputs).sort()).toEqual(['counts', 'every_row', 'observations']);
    const locations = body.parameter.filter((p) => p.name === 'output').flatMap((o) => o.part!.filter((p) => p.name === 'location').map((p) => p.valueUri));
    expect(new Set(locations).size).toBe(locations.length); // each file once
    const everyRow = outputs.every_row as Array<{ id: string; code: string; birth_date: string | null }>;
    expect(body.parameter.find((p) => p.name === 'output' && p.part!.some((q) => q.valueString === 'every_row'))!.part!.filter((p) => p.name === 'location').length).toBeGreaterThan(1);
    // One snapshot: the view's observations are exactly the SQL's, and the counts sum them.
    const inView = new Set(outputs.observations.map((r) => String(r.id).replace(/^Observation\//, '')));
    expect(new Set(everyRow.map((r) => r.id))).toEqual(inView);
    expect(everyRow).toHaveLength(inView.size);
    for (const o of before) expect(inView.has(o.id!)).toBe(true); // nothing committed before the kick-off is missing
    const now = await currentOf('Observation');
    const seen = now.filter((o) => inView.has(o.id!));
    const expected = joined(await currentOf('Patient'), seen);
    expect(sorted(everyRow)).toEqual(sorted(expected.map(({ id, code, birth_date }) => ({ id, code, birth_date }))));
    expect(sorted(outputs.counts)).toEqual(sorted(countsOf(expected)));
  });

  it('writes Parquet typed by the SQL result: counts as 64-bit integers, dates as DATE', async () => {
    const sql = 'SELECT p.gender, count(*) AS n, min(p.birth_date)::DATE AS oldest FROM patients p GROUP BY ALL ORDER BY ALL';
    const statusUrl = await started(parameters(subject('by_gender', { name: 'subjectResource', resource: library('by_gender', sql, { relatedArtifact: [tables[0]] }) }), { name: '_format', valueCode: 'parquet' }));
    const { body } = await completed(statusUrl);
    const location = body.parameter.find((p) => p.name === 'output')!.part!.find((p) => p.name === 'location')!.valueUri!;
    const { columns, rows } = readParquetRows(new Uint8Array(await (await fetch(location)).arrayBuffer()));
    expect(columns.map((c) => `${c.name}:${c.type}`)).toEqual(['gender:Utf8', 'n:Int64', expect.stringMatching(/^oldest:Date/)]);
    const patients = await currentOf('Patient');
    const expected = [...new Set(patients.map((p) => p.gender as string))].sort().map((gender) => {
      const of = patients.filter((p) => p.gender === gender);
      return { gender, n: of.length, oldest: of.map((p) => p.birthDate as string).sort()[0] };
    });
    expect(rows).toEqual(expected);
  });

  it('answers the $sqlquery-export name with query parts, their parameters, and a context table', async () => {
    const maleOnly = { ...patientView, where: [{ path: "gender = 'male'" }] };
    const byCode = library('by_code', 'SELECT o.id FROM obs o JOIN patients p ON p.id = o.patient_id WHERE o.code = :code', { parameter: [{ name: 'code', type: 'string', use: 'in' }] });
    const statusUrl = await started(
      parameters(
        { name: 'query', part: [{ name: 'name', valueString: 'heights' }, { name: 'queryResource', resource: byCode }, { name: 'parameters', resource: parameters({ name: 'code', valueString: '8302-2' }) }] },
        { name: 'context', resource: maleOnly },
      ),
      '$sqlquery-export',
    );
    const { body } = await completed(statusUrl);
    const rows = (await downloaded(body, 'ndjson')).heights;
    const males = (await currentOf('Patient')).filter((p) => p.gender === 'male');
    const expected = joined(males, await currentOf('Observation')).filter((r) => r.code === '8302-2');
    expect(expected.length).toBeGreaterThan(0);
    expect(sorted(rows)).toEqual(sorted(expected.map(({ id }) => ({ id }))));
  });

  it.each([
    ['a SQL syntax error', [subject('bad', { name: 'subjectResource', resource: library('bad', 'SELEC 1') })], 422, 'subject[0]'],
    ['an unknown column', [subject('bad', { name: 'subjectResource', resource: library('bad', 'SELECT nope FROM obs') })], 422, 'subject[0]'],
    ['COPY', [subject('bad', { name: 'subjectResource', resource: library('bad', "COPY obs TO 'out.csv'") })], 400, 'subject[0]'],
    ['a second statement', [subject('bad', { name: 'subjectResource', resource: library('bad', 'SELECT 1; DROP TABLE obs') })], 400, 'subject[0]'],
    ['a missing parameter', [subject('bad', { name: 'subjectResource', resource: library('bad', 'SELECT :x AS x', { parameter: [{ name: 'x', type: 'string', use: 'in' }] }) })], 400, 'subject[0]'],
    ['parameters on a view subject', [subject('v', { name: 'subjectResource', resource: patientView }, { name: 'parameters', resource: parameters({ name: 'x', valueString: 'y' }) })], 400, 'subject[0].parameters'],
    ['a context no table names', [subject('c', { name: 'subjectResource', resource: library('c', COUNTS) }), { name: 'context', resource: { ...patientView, url: 'https://bulkflow.example/unused' } }], 400, 'context'],
    ['a table found nowhere', [subject('c', { name: 'subjectResource', resource: library('c', COUNTS, { relatedArtifact: [{ type: 'depends-on', resource: 'https://bulkflow.example/none', label: 'x' }] }) })], 404, undefined],
  ])('refuses a SQL subject with %s at kick-off, before any job starts', async (_what, parts, status, expression) => {
    const res = await kickOff(parameters(...parts));
    expect(res.status).toBe(status);
    const outcome = (await res.json()) as { resourceType: string; issue: Array<{ expression?: string[] }> };
    expect(outcome.resourceType).toBe('OperationOutcome');
    if (expression) expect(outcome.issue[0].expression?.[0]).toMatch(new RegExp(`^${expression.replace(/[[\].]/g, '\\$&')}`));
  });

  it('fails an export whose query runs past its time limit, with a 422 that says so', async () => {
    const statusUrl = await started(parameters(subject('forever', { name: 'subjectResource', resource: library('forever', RUNAWAY, { relatedArtifact: [] }) })));
    const deadline = Date.now() + 60_000;
    let poll = await fetch(statusUrl, { redirect: 'manual' });
    while (poll.status === 202 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      poll = await fetch(statusUrl, { redirect: 'manual' });
    }
    expect(poll.status).toBe(303);
    const result = await fetch(poll.headers.get('location')!);
    expect(result.status).toBe(422);
    expect(((await result.json()) as { issue: Array<{ diagnostics: string }> }).issue[0].diagnostics).toMatch(/time limit/);
  });

  it('stops a running query when the export is cancelled, and removes its files', async () => {
    const statusUrl = await started(parameters(subject('forever', { name: 'subjectResource', resource: library('forever', RUNAWAY, { relatedArtifact: [] }) })));
    const exportId = statusUrl.split('/').pop()!;
    const handle = stack.client.workflow.getHandle(exportId);
    await runningActivity(handle, 'exportSqlSubject');
    const cancelledAt = Date.now();
    expect((await fetch(statusUrl, { method: 'DELETE' })).status).toBe(202);
    // The workflow waits for the activity to acknowledge: it closes only once the engine stopped (else after the 15 s limit).
    await handle.result().catch(() => undefined);
    expect(Date.now() - cancelledAt).toBeLessThan(8_000);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    const directory = path.join(stack.outputDir!, stack.store.tenant, exportId);
    expect(existsSync(directory) ? readdirSync(directory) : []).toEqual([]);
  });

  it('completes after the worker running a SQL subject is killed with SIGKILL, every row exactly once', async () => {
    const taskQueue = `${stack.taskQueue}-sql-crash`;
    const first = startWorkerProcess(stack, taskQueue);
    workers.push(first);
    const { viewExport } = await import('../../workflows/view-export');
    const { viewExportStartOptions } = await import('../../workflows/visibility');
    // Started directly on the crash queue (the in-process worker must not take it), as the route builds it.
    const sqlSubject: ExportedSqlSubject = { name: 'every_row', sql: EVERY_ROW, parameters: [], views: [{ label: 'patients', definition: patientView }, { label: 'obs', definition: observationView }], sqlViews: [] };
    const exportId = `sqlcrash${Date.now()}`.padEnd(22, 'x').slice(0, 22);
    const input: ViewExportInput = {
      exportId,
      level: 'system',
      owner: 'anonymous',
      request: `${stack.fhir}/$sql-export`,
      window: { tenant: stack.store.tenant },
      views: [],
      sqlSubjects: [sqlSubject],
      format: 'ndjson',
      header: true,
      tuning: { partitionSize: 400, maxParallelPartitions: 1, maxPartResources: 300, maxPartBytes: 100 * 1024 * 1024, retentionMs: 60_000, heartbeatTimeoutMs: 2000, manifestPageFiles: 100 },
    };
    const handle = await stack.client.workflow.start(viewExport, { taskQueue, workflowId: exportId, args: [input], ...viewExportStartOptions(input) });
    await runningActivity(handle, 'exportSqlSubject'); // the victim holds the SQL subject
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    workers.push(startWorkerProcess(stack, taskQueue));

    const { body } = await completed(`${stack.fhir}/sql-export/${exportId}`, 120_000);
    const locations = body.parameter.find((p) => p.name === 'output')!.part!.filter((p) => p.name === 'location').map((p) => p.valueUri);
    expect(new Set(locations).size).toBe(locations.length);
    const rows = (await downloaded(body, 'ndjson')).every_row;
    const expected = joined(await currentOf('Patient'), await currentOf('Observation')).map(({ id, code, birth_date }) => ({ id, code, birth_date }));
    expect(rows).toHaveLength(expected.length);
    expect(sorted(rows)).toEqual(sorted(expected));
    // The kill hit the SQL subject: it ran again.
    const attempts = (await handle.fetchHistory()).events!.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt ?? 1);
    expect(Math.max(...attempts)).toBeGreaterThan(1);
  });

  /** Waits until a worker has started `activity` of the workflow. */
  async function runningActivity(handle: { describe(): Promise<{ raw: { pendingActivities?: unknown[] | null } }> }, activity: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const pending = ((await handle.describe()).raw.pendingActivities ?? []) as Json[];
      if (pending.some((a) => (a.activityType as { name?: string } | undefined)?.name === activity && (a.state === 2 || String(a.state).includes('STARTED')))) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`${activity} never started`);
  }
});
