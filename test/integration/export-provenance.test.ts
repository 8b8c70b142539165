/** Associated Provenance: includeAssociatedData at system level, and the IG's default rule for Patient/Group exports. */
import type { FhirResourceJson } from '../../src/fhir/resource-validation';
import { downloadAll, kickoffHeaders, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';

describe('$export with associated Provenance', () => {
  let stack: ExportStack;
  const observation = (id: string, patient: string): FhirResourceJson => ({ resourceType: 'Observation', id, status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${patient}` } });
  const provenance = (id: string, targets: string[], recorded: string): FhirResourceJson => ({
    resourceType: 'Provenance',
    id,
    target: targets.map((reference) => ({ reference })),
    recorded,
    agent: [{ who: { reference: 'Practitioner/dr' } }],
  });

  beforeAll(async () => {
    stack = await startExportStack();
    await stack.store.write(
      [
        { resourceType: 'Patient', id: 'pa' },
        { resourceType: 'Patient', id: 'pb' },
        { resourceType: 'Practitioner', id: 'dr' },
        observation('oa', 'pa'),
        observation('ob', 'pb'),
        { resourceType: 'Condition', id: 'ca', subject: { reference: 'Patient/pa' } },
        provenance('prov-oa-old', ['Observation/oa'], '2024-01-01T00:00:00Z'),
        provenance('prov-oa-new', ['Observation/oa'], '2024-06-01T00:00:00Z'),
        provenance('prov-ob', ['Observation/ob', 'Condition/ca'], '2024-02-01T00:00:00Z'),
        provenance('prov-ca', ['http://elsewhere.example/fhir/Condition/ca/_history/1'], '2024-03-01T00:00:00Z'),
        provenance('prov-pa', ['Patient/pa'], '2024-03-01T00:00:00Z'),
        provenance('prov-gone', ['Observation/never-stored'], '2024-03-01T00:00:00Z'),
      ].map((resource) => ({ op: 'put' as const, resource: resource as FhirResourceJson })),
    );
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  const exported = async (path: string, headers: Record<string, string> = kickoffHeaders) => {
    const res = await fetch(`${stack.fhir}${path}`, { headers });
    if (res.status !== 202) throw new Error(`${path} answered ${res.status}: ${await res.text()}`);
    const { manifest } = await pollUntilDone(res.headers.get('content-location')!);
    return { manifest, keys: (await downloadAll(manifest)).keys.map((k) => k.replace(/\/\d+$/, '')).sort() };
  };
  const provenanceIn = (keys: string[]) => keys.filter((k) => k.startsWith('Provenance/'));

  it('adds the Provenance of every exported resource for RelevantProvenanceResources', async () => {
    const { keys } = await exported('/$export?_type=Observation&includeAssociatedData=RelevantProvenanceResources');
    expect(keys.filter((k) => k.startsWith('Observation/'))).toEqual(['Observation/oa', 'Observation/ob']);
    expect(provenanceIn(keys)).toEqual(['Provenance/prov-ob', 'Provenance/prov-oa-new', 'Provenance/prov-oa-old'].sort());
  });

  it('keeps only the most recent Provenance per resource for LatestProvenanceResources', async () => {
    const { keys } = await exported('/$export?_type=Observation,Condition&includeAssociatedData=LatestProvenanceResources');
    // oa: prov-oa-new (newest); ob: prov-ob; ca: prov-ca (recorded after prov-ob).
    expect(provenanceIn(keys)).toEqual(['Provenance/prov-ca', 'Provenance/prov-oa-new', 'Provenance/prov-ob']);
  });

  it('gives Patient exports the Provenance of the exported compartments by default, unless _type leaves it out', async () => {
    const res = await fetch(`${stack.fhir}/Patient/$export`, {
      method: 'POST',
      headers: { ...kickoffHeaders, 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'patient', valueReference: { reference: 'Patient/pa' } }] }),
    });
    const { manifest } = await pollUntilDone(res.headers.get('content-location')!);
    const keys = (await downloadAll(manifest)).keys.map((k) => k.replace(/\/\d+$/, '')).sort();
    expect(keys).toEqual(
      ['Patient/pa', 'Observation/oa', 'Condition/ca', 'Practitioner/dr', 'Provenance/prov-oa-old', 'Provenance/prov-oa-new', 'Provenance/prov-ob', 'Provenance/prov-ca', 'Provenance/prov-pa'].sort(),
    );
    const withoutProvenance = await exported('/Patient/$export?_type=Patient,Observation');
    expect(provenanceIn(withoutProvenance.keys)).toEqual([]);
  });

  it('refuses an unsupported includeAssociatedData value under strict and reports it under lenient', async () => {
    const strict = await fetch(`${stack.fhir}/$export?includeAssociatedData=_myCustomData`, { headers: kickoffHeaders });
    expect(strict.status).toBe(400);
    expect(((await strict.json()) as { issue: Array<{ expression: string[] }> }).issue[0].expression).toEqual(['includeAssociatedData']);

    const { manifest, keys } = await exported('/$export?_type=Observation&includeAssociatedData=_myCustomData,LatestProvenanceResources', {
      ...kickoffHeaders,
      Prefer: 'respond-async, handling=lenient',
    });
    expect(provenanceIn(keys)).toEqual(['Provenance/prov-oa-new', 'Provenance/prov-ob']);
    expect(manifest.error).toHaveLength(1);
  });
});
