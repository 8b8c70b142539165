/**
 * `$sql-export` end to end on the real stack: every format through the 303 flow, compared row
 * for row with the runner's answer for the same data; several subjects; patient, group and
 * `_since` scoping; cancel; a worker killed with SIGKILL mid-export; every bad kick-off a 4xx.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { generatePopulation } from '../../src/generate/population';
import type { FhirResourceJson } from '../../src/fhir/resource-validation';
import { rowObject, viewRows } from '../../src/views/run-view';
import { compileView } from '../../src/views/view-definition';
import { viewExportStatusQuery } from '../../workflows/view-export';
import { readParquetRows } from '../support/parquet';
import { completed, downloaded } from '../support/view-exports';
import { startExportStack, type ExportStack } from '../support/export-stack';
import { startWorkerProcess as startWorker } from '../support/worker-process';


const observationView = {
  resourceType: 'ViewDefinition',
  name: 'observations',
  resource: 'Observation',
  select: [
    {
      column: [
        { name: 'id', path: 'getResourceKey()' },
        { name: 'patient', path: 'subject.getReferenceKey(Patient)' },
        { name: 'code', path: 'code.coding.first().code' },
        { name: 'value', path: 'value.ofType(Quantity).value', type: 'decimal' },
        { name: 'unit', path: 'value.ofType(Quantity).unit' },
        { name: 'codes', path: 'code.coding.code', collection: true },
      ],
    },
  ],
};
const patientView = {
  resourceType: 'ViewDefinition',
  name: 'patients',
  resource: 'Patient',
  select: [{ column: [{ name: 'id', path: 'id' }, { name: 'gender', path: 'gender' }] }, { forEach: 'name', column: [{ name: 'family', path: 'family' }, { name: 'note', path: "'say \"hi\", then go'" }] }],
};

type Row = Record<string, unknown>;
const canonical = (rows: Row[]) => rows.map((r) => JSON.stringify(r)).sort();

describe('$sql-export', () => {
  let stack: ExportStack;
  let population: FhirResourceJson[];
  /** While set, partitions after the first are held (heartbeating) until cancelled. */
  let holding = false;
  const workers: ChildProcess[] = [];

  const kickOff = (body: unknown, headers: Record<string, string> = { Prefer: 'respond-async' }) =>
    fetch(`${stack.fhir}/$sql-export`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json', ...headers }, body: JSON.stringify(body) });
  const parameters = (...parameter: unknown[]) => ({ resourceType: 'Parameters', parameter });
  const subject = (name: string, resource: unknown) => ({ name: 'subject', part: [{ name: 'name', valueString: name }, { name: 'subjectResource', resource }] });
  /** The rows the runner gives for these resources: what every export must contain. */
  const expectedRows = (view: unknown, resources: FhirResourceJson[]) => {
    const compiled = compileView(view);
    return resources.flatMap((r) => viewRows(compiled, r).map((row) => rowObject(compiled, row)));
  };

  /** A row as Parquet holds it here: collections as JSON text. */
  const asParquet = (row: Row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Array.isArray(v) ? JSON.stringify(v) : v]));
  /** A row as CSV writes it: every value as text, null empty, collections as JSON. */
  const asCsv = (row: Row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v)]));

  beforeAll(async () => {
    stack = await startExportStack({ settings: { partitionSize: 300, maxPartResources: 120, maxParallelPartitions: 2, heartbeatTimeoutMs: 2000, retentionMs: 60_000 }, retryAfterSeconds: 1 });
    population = [...generatePopulation({ patients: 8, seed: 71 })];
    await stack.store.write(population.map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker((real) => ({
      ...real,
      exportViewPartition: async (input) => {
        if (holding && input.partition.partition > 0) {
          // Held (heartbeating) until cancellation reaches it or the test stops holding.
          const context = Context.current();
          while (holding) {
            context.heartbeat();
            if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
        return real.exportViewPartition(input);
      },
    }));
  });
  afterAll(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await stack.close();
  });

  it.each([['ndjson'], ['csv'], ['json'], ['parquet']])('exports %s through the 303 flow, row for row what the runner gives, several subjects at once', async (format) => {
    const kick = await kickOff(parameters(subject('observations', observationView), subject('patients', patientView), { name: '_format', valueCode: format }, { name: 'clientTrackingId', valueString: `track-${format}` }));
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    const accepted = (await kick.json()) as { resourceType: string; parameter: { name: string; valueString?: string; valueCode?: string; valueUri?: string }[] };
    expect(accepted.resourceType).toBe('Parameters');
    expect(accepted.parameter.find((p) => p.name === 'status')?.valueCode).toBe('accepted');
    expect(accepted.parameter.find((p) => p.name === 'location')?.valueUri).toBe(statusUrl);

    const { result, body } = await completed(statusUrl);
    expect(result.status).toBe(200);
    expect(result.headers.get('expires')).toBeTruthy();
    const value = (name: string) => body.parameter.find((p) => p.name === name);
    expect(value('clientTrackingId')?.valueString).toBe(`track-${format}`);
    expect(value('_format')?.valueCode).toBe(format);
    expect(value('status')?.valueCode).toBe('completed');
    for (const name of ['exportStartTime', 'exportEndTime', 'exportDuration', 'cancelUrl', 'exportId']) expect(value(name)).toBeDefined();

    const rows = await downloaded(body, format);
    const observations = expectedRows(observationView, population);
    const patients = expectedRows(patientView, population);
    expect(observations.length).toBeGreaterThan(300); // several partitions and parts
    const shape = format === 'csv' ? (r: Row[]) => canonical(r.map(asCsv)) : format === 'parquet' ? (r: Row[]) => canonical(r.map(asParquet)) : canonical;
    expect(canonical(rows.observations)).toEqual(shape(observations));
    expect(canonical(rows.patients)).toEqual(shape(patients));
    const observationOutput = body.parameter.find((p) => p.name === 'output' && p.part![0].valueString === 'observations')!;
    expect(observationOutput.part!.filter((p) => p.name === 'location').length).toBeGreaterThan(2);
  });

  it('writes typed Parquet columns (FHIR types and ansi/type tags), nulls included, every value read back by an independent reader', async () => {
    const typed = {
      resourceType: 'ViewDefinition',
      resource: 'Patient',
      select: [
        {
          column: [
            { name: 'id', path: 'id' },
            { name: 'active', path: 'active', type: 'boolean' },
            { name: 'birth', path: 'birthDate', type: 'date', tag: [{ name: 'ansi/type', value: 'DATE' }] },
            { name: 'birth_text', path: 'birthDate', type: 'date' },
            { name: 'names', path: 'name.count()', type: 'integer' },
            { name: 'big', path: 'name.count() * 1000000', tag: [{ name: 'ansi/type', value: 'BIGINT' }] },
            { name: 'updated', path: 'meta.lastUpdated', type: 'instant', tag: [{ name: 'ansi/type', value: 'TIMESTAMP' }] },
            { name: 'ratio', path: 'name.count() / 3', type: 'decimal' },
            { name: 'deceased', path: 'deceased.ofType(dateTime)', type: 'dateTime' },
          ],
        },
      ],
    };
    const kick = await kickOff(parameters(subject('typed', typed), { name: '_format', valueCode: 'parquet' }));
    expect(kick.status).toBe(202);
    const { body } = await completed(kick.headers.get('content-location')!);
    const output = body.parameter.find((p) => p.name === 'output')!;
    const files = [];
    for (const location of output.part!.filter((p) => p.name === 'location')) files.push(readParquetRows(new Uint8Array(await (await fetch(location.valueUri!)).arrayBuffer())));
    expect(files[0].columns.map((c) => [c.name, c.type.split('<')[0]])).toEqual([
      ['id', 'Utf8'],
      ['active', 'Bool'],
      ['birth', 'Date32'],
      ['birth_text', 'Utf8'],
      ['names', 'Int32'],
      ['big', 'Int64'],
      ['updated', 'Timestamp'],
      ['ratio', 'Float64'],
      ['deceased', 'Utf8'],
    ]);
    const stored = await currentOf('Patient');
    const expected: Row[] = expectedRows(typed, stored).map((r) => ({ ...r, updated: new Date(r.updated as string).toISOString() }));
    expect(canonical(files.flatMap((f) => f.rows))).toEqual(canonical(expected));
    expect(expected.some((r) => r.deceased === null)).toBe(true); // nulls were written and read as nulls
  });

  it('refuses a Parquet export of a column whose ansi/type has no Parquet type, before the job starts', async () => {
    const odd = { ...patientView, select: [{ column: [{ name: 'id', path: 'id', tag: [{ name: 'ansi/type', value: 'GEOMETRY' }] }] }] };
    const res = await kickOff(parameters(subject('odd', odd), { name: '_format', valueCode: 'parquet' }));
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain('subject[0].id');
  });

  it('answers under the earlier name too (ViewDefinition/$viewdefinition-export with view parts and a stored view)', async () => {
    const stored = await fetch(`${stack.fhir}/ViewDefinition`, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: JSON.stringify(patientView) });
    expect(stored.status).toBe(201);
    const id = ((await stored.json()) as { id: string }).id;
    const kick = await fetch(`${stack.fhir}/ViewDefinition/$viewdefinition-export`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json', Prefer: 'respond-async' },
      body: JSON.stringify(parameters({ name: 'view', part: [{ name: 'name', valueString: 'stored' }, { name: 'viewReference', valueReference: { reference: `ViewDefinition/${id}` } }] })),
    });
    expect(kick.status).toBe(202);
    const rows = (await downloaded((await completed(kick.headers.get('content-location')!)).body, 'ndjson')).stored;
    expect(canonical(rows)).toEqual(canonical(expectedRows(patientView, population)));

    // A stored view is a resource of the store, but a system $export without _type exports R4 types only.
    const bulk = await fetch(`${stack.fhir}/$export`, { headers: { Accept: 'application/fhir+json', Prefer: 'respond-async' } });
    const statusUrl = bulk.headers.get('content-location')!;
    let manifest: { output: { type: string }[] } | undefined;
    for (let i = 0; i < 200 && !manifest; i++) {
      const res = await fetch(statusUrl);
      if (res.status === 200) manifest = (await res.json()) as typeof manifest;
      else await new Promise((resolve) => setTimeout(resolve, 1100));
    }
    expect(manifest!.output.map((o) => o.type)).toContain('Patient');
    expect(manifest!.output.map((o) => o.type)).not.toContain('ViewDefinition');
    await fetch(`${stack.fhir}/ViewDefinition/${id}`, { method: 'DELETE' });
  });

  it('writes CSV without header rows when asked', async () => {
    const kick = await kickOff(parameters(subject('patients', patientView), { name: '_format', valueCode: 'csv' }, { name: 'header', valueBoolean: false }));
    const { body } = await completed(kick.headers.get('content-location')!);
    const rows = await downloaded(body, 'csv', false);
    expect(rows.patients).toHaveLength(expectedRows(patientView, population).length);
    expect(Object.values(rows.patients[0])).not.toContain('gender');
  });

  it('exports the rows written out here by hand, in NDJSON and CSV: forEachOrNull, where, absent values', async () => {
    await stack.store.write(
      [
        { resourceType: 'Device', id: 'd1', status: 'active', lotNumber: 'L1', deviceName: [{ name: 'Pump A', type: 'user-friendly-name' }, { name: 'PA-1', type: 'model-name' }] },
        { resourceType: 'Device', id: 'd2', status: 'inactive', deviceName: [{ name: 'Meter, "digital"', type: 'user-friendly-name' }] },
        { resourceType: 'Device', id: 'd3', status: 'active' },
        { resourceType: 'Device', id: 'd4', status: 'entered-in-error', lotNumber: 'L4' },
      ].map((resource) => ({ op: 'put' as const, resource: resource as FhirResourceJson })),
    );
    const devices = {
      resourceType: 'ViewDefinition',
      name: 'devices',
      resource: 'Device',
      where: [{ path: "status != 'entered-in-error'" }],
      select: [{ column: [{ name: 'id', path: 'getResourceKey()' }, { name: 'lot', path: 'lotNumber' }] }, { forEachOrNull: 'deviceName', column: [{ name: 'name', path: 'name' }, { name: 'kind', path: 'type' }] }],
    };
    const expected = [
      { id: 'd1', lot: 'L1', name: 'Pump A', kind: 'user-friendly-name' },
      { id: 'd1', lot: 'L1', name: 'PA-1', kind: 'model-name' },
      { id: 'd2', lot: null, name: 'Meter, "digital"', kind: 'user-friendly-name' },
      { id: 'd3', lot: null, name: null, kind: null },
    ];
    const ndjson = await kickOff(parameters(subject('devices', devices), { name: '_format', valueCode: 'ndjson' }));
    expect(canonical((await downloaded((await completed(ndjson.headers.get('content-location')!)).body, 'ndjson')).devices)).toEqual(canonical(expected));
    const csv = await kickOff(parameters(subject('devices', devices), { name: '_format', valueCode: 'csv' }));
    const csvRows = (await downloaded((await completed(csv.headers.get('content-location')!)).body, 'csv')).devices;
    expect(canonical(csvRows)).toEqual(canonical(expected.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v ?? ''])))));
  });

  it('scopes by patient, group and _since as $export does', async () => {
    const patient = population.find((r) => r.resourceType === 'Patient')!;
    const groupId = population.find((r) => r.resourceType === 'Group')!.id!;
    const mine = population.filter((r) => r.resourceType !== 'Observation' || (r.subject as { reference: string }).reference === `Patient/${patient.id}`);
    const one = await kickOff(parameters(subject('observations', observationView), { name: 'patient', valueReference: { reference: `Patient/${patient.id}` } }));
    expect(canonical((await downloaded((await completed(one.headers.get('content-location')!)).body, 'ndjson')).observations)).toEqual(canonical(expectedRows(observationView, mine)));

    // A Group of some patients (not all): exactly their observations' rows.
    const members = population.filter((r) => r.resourceType === 'Patient').slice(0, 3).map((p) => p.id!);
    await stack.store.write([{ op: 'put', resource: { resourceType: 'Group', id: 'three-patients', type: 'person', actual: true, member: members.map((m) => ({ entity: { reference: `Patient/${m}` } })) } as FhirResourceJson }]);
    const ofMembers = population.filter((r) => r.resourceType === 'Observation' && members.includes((r.subject as { reference: string }).reference.split('/')[1]));
    const group = await kickOff(parameters(subject('observations', observationView), { name: 'group', valueReference: { reference: 'Group/three-patients' } }));
    const groupRows = (await downloaded((await completed(group.headers.get('content-location')!)).body, 'ndjson')).observations;
    expect(canonical(groupRows)).toEqual(canonical(expectedRows(observationView, ofMembers)));
    expect(groupRows.length).toBeLessThan(expectedRows(observationView, population).length);
    const everyone = await kickOff(parameters(subject('observations', observationView), { name: 'group', valueReference: { reference: `Group/${groupId}` } }));
    expect((await downloaded((await completed(everyone.headers.get('content-location')!)).body, 'ndjson')).observations).toHaveLength(expectedRows(observationView, population).length);

    const before = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 20)); // the write's stamp comes strictly after it
    const changed = { ...population.find((r) => r.resourceType === 'Observation')!, status: 'amended' };
    await stack.store.write([{ op: 'put', resource: changed }]);
    const since = await kickOff(parameters(subject('observations', observationView), { name: '_since', valueInstant: before }));
    const sinceRows = (await downloaded((await completed(since.headers.get('content-location')!)).body, 'ndjson')).observations;
    expect(sinceRows.map((r) => r.id)).toEqual([changed.id]);
  });

  it('cancels mid-export with DELETE: 202, then 404 on the status and result URLs, and the files are gone', async () => {
    holding = true;
    const kick = await kickOff(parameters(subject('observations', observationView)));
    const statusUrl = kick.headers.get('content-location')!;
    const id = statusUrl.split('/').pop()!;
    const handle = stack.client.workflow.getHandle(id);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && ((await handle.query(viewExportStatusQuery).catch(() => undefined))?.partitionsDone ?? 0) < 1) await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(path.join(stack.outputDir!, stack.store.tenant, id)).length).toBeGreaterThan(0);
    const cancelled = await fetch(statusUrl, { method: 'DELETE' });
    expect(cancelled.status).toBe(202);
    expect((await fetch(statusUrl, { redirect: 'manual' })).status).toBe(404);
    expect((await fetch(`${statusUrl}/result`)).status).toBe(404);
    await handle.result().catch(() => undefined);
    expect(existsSync(path.join(stack.outputDir!, stack.store.tenant, id)) && readdirSync(path.join(stack.outputDir!, stack.store.tenant, id)).length > 0).toBe(false);
    holding = false;
  });

  it('fails an export whose view cannot be evaluated on the data: 303, then the result URL answers 422 naming the column and resource', async () => {
    const several = { ...observationView, select: [{ column: [{ name: 'codes', path: 'code.coding.code' }] }] };
    await stack.store.write([{ op: 'put', resource: { resourceType: 'Observation', id: 'two-codes', status: 'final', code: { coding: [{ code: 'a' }, { code: 'b' }] } } }]);
    const kick = await kickOff(parameters(subject('codes', several)));
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    const deadline = Date.now() + 30_000;
    let poll = await fetch(statusUrl, { redirect: 'manual' });
    while (poll.status === 202 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1100));
      poll = await fetch(statusUrl, { redirect: 'manual' });
    }
    expect(poll.status).toBe(303);
    const result = await fetch(poll.headers.get('location')!);
    expect(result.status).toBe(422);
    const outcome = (await result.json()) as { resourceType: string; issue: { diagnostics: string }[] };
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0].diagnostics).toMatch(/Column codes .* values for Observation\/two-codes/);
    await stack.store.delete('Observation', 'two-codes');
  });

  it.each([
    ['without Prefer: respond-async', parameters(subject('o', observationView)), {}, 400],
    ['without a subject', parameters(), undefined, 400],
    ['with _format fhir', parameters(subject('o', observationView), { name: '_format', valueCode: 'fhir' }), undefined, 400],
    ['with source', parameters(subject('o', observationView), { name: 'source', valueString: 'http://elsewhere' }), undefined, 400],
    ['with an unknown parameter', parameters(subject('o', observationView), { name: 'bogus', valueString: 'x' }), undefined, 400],
    ['with two subjects of one name', parameters(subject('o', observationView), subject('o', patientView)), undefined, 400],
    ['with a view that does not parse', parameters(subject('o', { ...observationView, select: [{ column: [{ name: 'a', path: 'code.(' }] }] })), undefined, 422],
    ['with an unknown stored view', parameters({ name: 'subject', part: [{ name: 'name', valueString: 'x' }, { name: 'subjectReference', valueReference: { reference: 'ViewDefinition/none' } }] }), undefined, 404],
    ['with an unknown patient', parameters(subject('o', observationView), { name: 'patient', valueReference: { reference: 'Patient/nobody' } }), undefined, 400],
  ])('refuses a kick-off %s with a 4xx OperationOutcome, before any job starts', async (_label, body, headers, status) => {
    const res = await kickOff(body, headers as Record<string, string> | undefined);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });

  it('checks group and patient as $export does: a patient outside the Group, or a Group that contains itself, is refused before any job starts', async () => {
    const [member, outsider] = population.filter((r) => r.resourceType === 'Patient');
    await stack.store.write([
      { op: 'put', resource: { resourceType: 'Group', id: 'one-member', type: 'person', actual: true, member: [{ entity: { reference: `Patient/${member.id}` } }] } as FhirResourceJson },
      { op: 'put', resource: { resourceType: 'Group', id: 'loop', type: 'person', actual: true, member: [{ entity: { reference: 'Group/loop' } }] } as FhirResourceJson },
    ]);
    const scoped = (...extra: unknown[]) => kickOff(parameters(subject('o', observationView), { name: 'group', valueReference: { reference: 'Group/one-member' } }, ...extra));
    const outside = await scoped({ name: 'patient', valueReference: { reference: `Patient/${outsider.id}` } });
    expect(outside.status).toBe(400);
    expect(((await outside.json()) as { issue: Array<{ diagnostics: string }> }).issue[0].diagnostics).toContain(`Patient/${outsider.id}`);
    const inside = await scoped({ name: 'patient', valueReference: { reference: `Patient/${member.id}` } });
    expect(inside.status).toBe(202);
    await fetch(inside.headers.get('content-location')!, { method: 'DELETE' });
    const loop = await kickOff(parameters(subject('o', observationView), { name: 'group', valueReference: { reference: 'Group/loop' } }));
    expect(loop.status).toBe(400);
    expect(((await loop.json()) as { issue: Array<{ code: string }> }).issue[0].code).toBe('business-rule');
  });

  it('completes after its worker is killed with SIGKILL and restarted, every row exactly once', async () => {
    const taskQueue = `${stack.taskQueue}-crash`;
    const startWorkerProcess = () => {
      const child = startWorker(stack, taskQueue);
      workers.push(child);
      return child;
    };
    // Started directly on the crash queue (the API's worker must not take it): same input the route builds.
    const crashStack = stack;
    const first = startWorkerProcess();
    const views = [{ name: 'observations', definition: observationView, resource: 'Observation' }];
    const exportId = `crash${Date.now()}`.padEnd(22, 'x').slice(0, 22);
    const { viewExport } = await import('../../workflows/view-export');
    const { viewExportStartOptions } = await import('../../workflows/visibility');
    const input = {
      exportId,
      level: 'system' as const,
      owner: 'anonymous',
      request: `${crashStack.fhir}/$sql-export`,
      window: { tenant: crashStack.store.tenant },
      views,
      format: 'ndjson' as const,
      header: true,
      tuning: { partitionSize: 200, maxParallelPartitions: 1, maxPartResources: 60, maxPartBytes: 100 * 1024 * 1024, retentionMs: 60_000, heartbeatTimeoutMs: 2000, manifestPageFiles: 100 },
    };
    const handle = await crashStack.client.workflow.start(viewExport, { taskQueue, workflowId: exportId, args: [input], ...viewExportStartOptions(input) });
    const deadline = Date.now() + 60_000;
    let killedAt: { done: number; total: number } | undefined;
    while (Date.now() < deadline) {
      const status = await handle.query(viewExportStatusQuery).catch(() => undefined);
      if (status && status.partitionsDone >= 1) {
        first.kill('SIGKILL');
        killedAt = { done: status.partitionsDone, total: status.partitionsTotal };
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(killedAt).toBeDefined();
    expect(killedAt!.done).toBeLessThan(killedAt!.total);
    await new Promise((resolve) => first.once('exit', resolve));
    startWorkerProcess();

    const { body } = await completed(`${crashStack.fhir}/sql-export/${exportId}`, 120_000);
    const rows = (await downloaded(body, 'ndjson')).observations;
    const expected = expectedRows(observationView, await currentOf('Observation'));
    expect(rows).toHaveLength(expected.length);
    expect(canonical(rows)).toEqual(canonical(expected));
  });

  /** The store's current resources of a type (as stored: with meta). */
  async function currentOf(type: string): Promise<FhirResourceJson[]> {
    const out: FhirResourceJson[] = [];
    for await (const rows of stack.store.currentResources(type, await stack.store.snapshotTime())) for (const r of rows) out.push(JSON.parse(r.body.toString('utf8')) as FhirResourceJson);
    return out;
  }
});
