/** Patient- and Group-level $export: the compartments of all patients, of a Group's active members, or of listed patients. */
import { generatePopulation } from '../../src/generate/population';
import type { FhirResourceJson } from '../../src/fhir/resource-validation';
import { downloadAll, downloadDeleted, kickoffHeaders, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';

/**
 * The patients a generated resource belongs to, read from its own JSON (independently of the
 * store's compartment logic): every generated reference to a Patient is through a compartment
 * parameter, including Group.member (Group is in the R4 Patient compartment).
 */
function patientsOf(resource: FhirResourceJson): string[] {
  if (resource.resourceType === 'Patient') return [resource.id!];
  return [...JSON.stringify(resource).matchAll(/"reference":"Patient\/([^"]+)"/g)].map((m) => m[1]);
}

describe('Patient- and Group-level $export', () => {
  let stack: ExportStack;
  const resources = [...generatePopulation({ patients: 6, seed: 21 })];
  const patientIds = resources.filter((r) => r.resourceType === 'Patient').map((r) => r.id!);
  /** The compartments of `selected`, plus the Practitioners, Organizations, Locations and Medications they reference. */
  const keysFor = (selected: Set<string>) => {
    const inCompartments = resources.filter((r) => patientsOf(r).some((p) => selected.has(p)));
    const referenced = new Set(
      inCompartments.flatMap((r) => [...JSON.stringify(r).matchAll(/"reference":"((?:Practitioner|Organization|Location|Medication)\/[^"]+)"/g)].map((m) => m[1])),
    );
    return [...inCompartments, ...resources.filter((r) => referenced.has(`${r.resourceType}/${r.id}`))].map((r) => `${r.resourceType}/${r.id}/1`).sort();
  };
  const cohort: FhirResourceJson = {
    resourceType: 'Group',
    id: 'cohort',
    type: 'person',
    actual: true,
    member: [
      { entity: { reference: `Patient/${patientIds[0]}` } },
      { entity: { reference: `Patient/${patientIds[1]}` }, inactive: true },
      { entity: { reference: `Patient/${patientIds[2]}` }, period: { start: '2020-01-01' } },
    ],
  };
  const post = (path: string, parameters: unknown[]) =>
    fetch(`${stack.fhir}${path}`, {
      method: 'POST',
      headers: { ...kickoffHeaders, 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: parameters }),
    });

  beforeAll(async () => {
    stack = await startExportStack();
    await stack.store.write(resources.map((resource) => ({ op: 'put' as const, resource })));
    await stack.store.put(cohort);
    resources.push(cohort);
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  it('exports the Patient compartment of every patient and the Practitioners, Organizations and Locations it references', async () => {
    await stack.store.put({ resourceType: 'Practitioner', id: 'unreferenced' });
    const { manifest } = await pollUntilDone(await kickOffAt('/Patient/$export'));
    const { keys } = await downloadAll(manifest);
    expect(keys.sort()).toEqual(keysFor(new Set(patientIds)));
    expect(manifest.request).toBe(`${stack.fhir}/Patient/$export`);
    expect(['Practitioner', 'Organization', 'Location'].every((t) => manifest.output.some((o) => o.type === t))).toBe(true);
    expect(keys).not.toContain('Practitioner/unreferenced/1');
  });

  it("exports only the Group's active members", async () => {
    const { manifest } = await pollUntilDone(await kickOffAt('/Group/cohort/$export'));
    const { keys } = await downloadAll(manifest);
    expect(keys.sort()).toEqual(keysFor(new Set([patientIds[0], patientIds[2]])));
  });

  it('limits a Group export to the patients of a POST patient parameter, and _type', async () => {
    const res = await post('/Group/cohort/$export', [
      { name: 'patient', valueReference: { reference: `Patient/${patientIds[2]}` } },
      { name: '_type', valueString: 'Patient,Encounter' },
    ]);
    expect(res.status).toBe(202);
    const { manifest } = await pollUntilDone(res.headers.get('content-location')!);
    const { keys } = await downloadAll(manifest);
    expect(keys.sort()).toEqual(keysFor(new Set([patientIds[2]])).filter((k) => k.startsWith('Patient/') || k.startsWith('Encounter/')));
  });

  it('answers 404 for an unknown Group and 400 for patients outside the store or the Group', async () => {
    const unknownGroup = await fetch(`${stack.fhir}/Group/nope/$export`, { headers: kickoffHeaders });
    expect(unknownGroup.status).toBe(404);
    expect(((await unknownGroup.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');

    const notMember = await post('/Group/cohort/$export', [{ name: 'patient', valueReference: { reference: `Patient/${patientIds[1]}` } }]);
    expect(notMember.status).toBe(400);
    expect(((await notMember.json()) as { issue: Array<{ diagnostics: string }> }).issue[0].diagnostics).toContain(`Patient/${patientIds[1]}`);

    const unknownPatient = await post('/Patient/$export', [{ name: 'patient', valueReference: { reference: 'Patient/ghost' } }]);
    expect(unknownPatient.status).toBe(400);
    expect(((await unknownPatient.json()) as { issue: Array<{ diagnostics: string }> }).issue[0].diagnostics).toContain('Patient/ghost');

    const onGet = await fetch(`${stack.fhir}/Patient/$export?patient=Patient/${patientIds[0]}`, { headers: kickoffHeaders });
    expect(onGet.status).toBe(400);

    const outsideCompartment = await fetch(`${stack.fhir}/Patient/$export?_type=Questionnaire`, { headers: kickoffHeaders });
    expect(outsideCompartment.status).toBe(400);
    expect(((await outsideCompartment.json()) as { issue: Array<{ expression: string[] }> }).issue[0].expression).toEqual(['_type']);
  });

  it('gives patients who joined a Group after _since all their data, and the others only changes', async () => {
    const [a, b] = [patientIds[3], patientIds[4]];
    await stack.store.put({ resourceType: 'Group', id: 'growing', type: 'person', actual: true, member: [{ entity: { reference: `Patient/${a}` } }] });
    const since = await stack.store.snapshotTime();
    const grown = await stack.store.put({
      resourceType: 'Group',
      id: 'growing',
      type: 'person',
      actual: true,
      member: [{ entity: { reference: `Patient/${a}` } }, { entity: { reference: `Patient/${b}` } }],
    });
    const observation = resources.find((r) => r.resourceType === 'Observation' && patientsOf(r).includes(a))!;
    const changed = await stack.store.put({ ...observation, status: 'amended' });

    const { manifest } = await pollUntilDone(await kickOffAt(`/Group/growing/$export?_since=${encodeURIComponent(since)}`));
    const { keys } = await downloadAll(manifest);
    const ofB = resources.filter((r) => patientsOf(r).includes(b) && !(r.resourceType === 'Group' && r.id === 'growing'));
    expect(keys.sort()).toEqual(
      [
        ...ofB.map((r) => `${r.resourceType}/${r.id}/1`),
        `Observation/${changed.id}/${changed.versionId}`,
        `Group/growing/${grown.versionId}`,
      ].sort(),
    );
  });

  it('includes the patients of nested Groups, and refuses a Group that contains itself', async () => {
    const group = (id: string, members: string[]) => ({
      resourceType: 'Group',
      id,
      type: 'person',
      actual: true,
      member: members.map((reference) => ({ entity: { reference } })),
    });
    await stack.store.write([
      { op: 'put', resource: group('outer', [`Patient/${patientIds[0]}`, 'Group/inner']) },
      { op: 'put', resource: group('inner', [`Patient/${patientIds[5]}`]) },
      { op: 'put', resource: group('loop-a', [`Patient/${patientIds[0]}`, 'Group/loop-b']) },
      { op: 'put', resource: group('loop-b', ['Group/loop-a']) },
    ]);
    const { manifest } = await pollUntilDone(await kickOffAt('/Group/outer/$export?_type=Patient'));
    const { keys } = await downloadAll(manifest);
    expect(keys.sort()).toEqual([`Patient/${patientIds[0]}/1`, `Patient/${patientIds[5]}/1`].sort());

    const loop = await fetch(`${stack.fhir}/Group/loop-a/$export`, { headers: kickoffHeaders });
    expect(loop.status).toBe(400);
    const outcome = (await loop.json()) as { issue: Array<{ diagnostics: string }> };
    expect(outcome.issue[0].diagnostics).toContain('Group/loop-a → Group/loop-b → Group/loop-a');
  });

  it('adds only the referenced resources that a current version of a selected compartment references', async () => {
    const [mine, other] = [patientIds[4], patientIds[5]];
    await stack.store.write([
      { op: 'put', resource: { resourceType: 'Practitioner', id: 'formerly-referenced' } },
      { op: 'put', resource: { resourceType: 'Practitioner', id: 'still-referenced' } },
      { op: 'put', resource: { resourceType: 'Organization', id: 'of-another-patient' } },
      { op: 'put', resource: { resourceType: 'Observation', id: 'ref-1', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${mine}` }, performer: [{ reference: 'Practitioner/formerly-referenced' }] } },
      { op: 'put', resource: { resourceType: 'Observation', id: 'ref-2', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${mine}` }, performer: [{ reference: 'http://elsewhere.example/fhir/Practitioner/still-referenced' }] } },
      { op: 'put', resource: { resourceType: 'Observation', id: 'ref-3', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${other}` }, performer: [{ reference: 'Organization/of-another-patient' }] } },
    ]);
    await stack.store.put({ resourceType: 'Observation', id: 'ref-1', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${mine}` } });

    const res = await post('/Patient/$export', [
      { name: 'patient', valueReference: { reference: `Patient/${mine}` } },
      { name: '_type', valueString: 'Practitioner,Organization' },
    ]);
    expect(res.status).toBe(202);
    const { manifest } = await pollUntilDone(res.headers.get('content-location')!);
    const { keys } = await downloadAll(manifest);
    const expected = keysFor(new Set([mine])).filter((k) => /^(Practitioner|Organization)\//.test(k));
    expect(keys.sort()).toEqual([...expected, 'Practitioner/still-referenced/1'].sort());
    const exportId = res.headers.get('content-location')!.split('/').pop()!;
    const recorded = await stack.pool.query('SELECT count(*)::int AS n FROM export_references WHERE export_id = $1', [exportId]);
    expect(recorded.rows[0].n).toBe(expected.length + 1);
    await fetch(res.headers.get('content-location')!, { method: 'DELETE' });
  });

  it("reports deletions since _since only of the selected patients' resources", async () => {
    const since = await stack.store.snapshotTime();
    const encounterOf = (p: string) => resources.find((r) => r.resourceType === 'Encounter' && patientsOf(r).includes(p))!;
    const [mine, theirs] = [encounterOf(patientIds[5]), encounterOf(patientIds[3])];
    await stack.store.write([
      { op: 'delete', resourceType: 'Encounter', id: mine.id! },
      { op: 'delete', resourceType: 'Encounter', id: theirs.id! },
    ]);
    const res = await post('/Patient/$export', [
      { name: 'patient', valueReference: { reference: `Patient/${patientIds[5]}` } },
      { name: '_since', valueInstant: since },
    ]);
    expect(res.status).toBe(202);
    const { manifest } = await pollUntilDone(res.headers.get('content-location')!);
    expect(await downloadDeleted(manifest)).toEqual([`Encounter/${mine.id}`]);
    expect((await downloadAll(manifest)).keys).toEqual([]);

    const all = (await pollUntilDone(await kickOffAt(`/Patient/$export?_since=${encodeURIComponent(since)}`))).manifest;
    expect((await downloadDeleted(all)).sort()).toEqual([`Encounter/${mine.id}`, `Encounter/${theirs.id}`].sort());
  });

  async function kickOffAt(path: string): Promise<string> {
    const res = await fetch(`${stack.fhir}${path}`, { headers: kickoffHeaders });
    if (res.status !== 202) throw new Error(`${path} answered ${res.status}: ${await res.text()}`);
    return res.headers.get('content-location')!;
  }
});
