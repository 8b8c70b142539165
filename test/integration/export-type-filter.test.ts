/**
 * `_typeFilter` on the real stack: each parameter type and modifier, OR within and across
 * queries, strict vs lenient. Expected sets come from plain predicates over the written JSON,
 * independent of the search engine.
 */
import { generatePopulation } from '../../src/generate/population';
import type { FhirResourceJson } from '../../src/fhir/resource-validation';
import { downloadAll, downloadDeleted, kickoffHeaders, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';

type Json = Record<string, any>;

const codings = (concept: Json | undefined): Json[] => concept?.coding ?? [];
const hasCode = (concept: Json | undefined, system: string | undefined, code: string) =>
  codings(concept).some((c) => c.code === code && (system === undefined || c.system === system));
const fold = (s: string) => s.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();

describe('$export with _typeFilter', () => {
  let stack: ExportStack;
  const resources: Json[] = [...generatePopulation({ patients: 8, seed: 5 })];
  const extra: FhirResourceJson[] = [
    { resourceType: 'Patient', id: 'tf-mueller', name: [{ family: 'Müller', given: ['Jörg'] }], birthDate: '1975-06-01', gender: 'male' },
    { resourceType: 'Patient', id: 'tf-muller', name: [{ family: 'Muller', given: ['Ann'] }], birthDate: '1990-01-01' },
    { resourceType: 'Patient', id: 'tf-mullins', name: [{ family: 'Mullins' }], deceasedBoolean: true },
    {
      resourceType: 'Observation',
      id: 'tf-profiled',
      meta: { profile: ['http://example.org/fhir/StructureDefinition/special-vital'] },
      status: 'amended',
      code: { coding: [{ system: 'urn:local', code: 'x-1' }], text: 'Special measurement' },
      subject: { reference: 'Patient/tf-mueller' },
      valueQuantity: { value: 250, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' },
    },
  ];
  const all = () => [...resources, ...extra] as Json[];
  const keys = (filter: (r: Json) => boolean) => all().filter(filter).map((r) => `${r.resourceType}/${r.id}/1`).sort();
  const exportKeys = async (query: string) => {
    const res = await fetch(`${stack.fhir}/$export${query}`, { headers: kickoffHeaders });
    if (res.status !== 202) throw new Error(`${query} answered ${res.status}: ${await res.text()}`);
    const { manifest } = await pollUntilDone(res.headers.get('content-location')!);
    return { manifest, keys: (await downloadAll(manifest)).keys.sort() };
  };
  const typeFilter = (...queries: string[]) => queries.map((q) => `&_typeFilter=${encodeURIComponent(q)}`).join('');
  const observation = (r: Json) => r.resourceType === 'Observation';
  const patientOf = (r: Json) => r.subject?.reference?.replace('Patient/', '');

  beforeAll(async () => {
    stack = await startExportStack({ settings: { partitionSize: 400, maxPartResources: 150 } });
    await stack.store.write(all().map((resource) => ({ op: 'put' as const, resource: resource as FhirResourceJson })));
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  it.each<[string, string[], (r: Json) => boolean]>([
    ['token system|code', ['Observation?code=http://loinc.org|8302-2'], (r) => hasCode(r.code, 'http://loinc.org', '8302-2')],
    ['token code OR code (comma)', ['Observation?code=8302-2,29463-7'], (r) => hasCode(r.code, undefined, '8302-2') || hasCode(r.code, undefined, '29463-7')],
    ['token :not', ['Observation?status:not=final'], (r) => r.status !== 'final'],
    ['token :text', ['Observation?code:text=special'], (r) => fold(r.code?.text ?? '').includes('special') || codings(r.code).some((c) => fold(c.display ?? '').includes('special'))],
    ['two queries OR-ed', ['Observation?code=8302-2', 'Observation?status=amended'], (r) => hasCode(r.code, undefined, '8302-2') || r.status === 'amended'],
    ['quantity with prefix and unit', ['Observation?value-quantity=gt100|http://unitsofmeasure.org|mg'], (r) => r.valueQuantity?.code === 'mg' && r.valueQuantity.value > 100],
    ['quantity without unit', ['Observation?value-quantity=lt60'], (r) => typeof r.valueQuantity?.value === 'number' && r.valueQuantity.value < 60],
    ['date with prefix', ['Observation?date=ge2024-01-01'], (r) => r.effectiveDateTime !== undefined && r.effectiveDateTime >= '2024-01-01'],
    ['reference Type/id', ['Observation?subject=Patient/tf-mueller'], (r) => patientOf(r) === 'tf-mueller'],
    ['uri', ['Observation?_profile=http://example.org/fhir/StructureDefinition/special-vital'], (r) => r.id === 'tf-profiled'],
    ['uri :below', ['Observation?_profile:below=http://example.org/fhir/'], (r) => r.id === 'tf-profiled'],
    ['missing', ['Observation?value-quantity:missing=true'], (r) => r.valueQuantity === undefined],
    ['AND across parameters', ['Observation?status=final&category=vital-signs&code=29463-7'], (r) => r.status === 'final' && codings(r.category?.[0]).some((c) => c.code === 'vital-signs') && hasCode(r.code, undefined, '29463-7')],
  ])('Observation by %s', async (_what, queries, predicate) => {
    const expected = keys((r) => observation(r) && predicate(r));
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(all().filter(observation).length);
    const { keys: exported } = await exportKeys(`?_type=Observation${typeFilter(...queries)}`);
    expect(exported).toEqual(expected);
  });

  it.each<[string, string, (r: Json) => boolean]>([
    ['string (starts with, accent- and case-insensitive)', 'Patient?family=mul', (r) => r.name?.some((n: Json) => fold(n.family ?? '').startsWith('mul'))],
    ['string :exact', 'Patient?family:exact=Müller', (r) => r.name?.some((n: Json) => n.family === 'Müller')],
    ['string :contains', 'Patient?name:contains=ülle', (r) => r.name?.some((n: Json) => [n.family, ...(n.given ?? [])].some((s) => fold(s ?? '').includes('ulle')))],
    ['token on a boolean', 'Patient?deceased=true', (r) => r.deceasedBoolean === true],
    ['date range of a year', 'Patient?birthdate=1990', (r) => r.birthDate?.startsWith('1990')],
    ['token :missing=false', 'Patient?gender:missing=false', (r) => r.gender !== undefined],
  ])('Patient by %s', async (_what, query, predicate) => {
    const patient = (r: Json) => r.resourceType === 'Patient';
    const expected = keys((r) => patient(r) && predicate(r));
    expect(expected.length).toBeGreaterThan(0);
    const { keys: exported } = await exportKeys(`?_type=Patient${typeFilter(query)}`);
    expect(exported).toEqual(expected);
  });

  it('filters _id and _lastUpdated in SQL, and leaves a type without a filter whole', async () => {
    const ids = all().filter(observation).slice(0, 3).map((r) => r.id);
    const { keys: exported } = await exportKeys(`?_type=Observation,Condition${typeFilter(`Observation?_id=${ids.join(',')}&_lastUpdated=gt2000-01-01`)}`);
    expect(exported).toEqual(keys((r) => ids.includes(r.id) || r.resourceType === 'Condition'));
  });

  it('applies filters of several types given in one comma-separated value', async () => {
    const { keys: exported } = await exportKeys(`?_type=Observation,Patient&_typeFilter=${encodeURIComponent('Observation?status=amended,Patient?family=mul')}`);
    expect(exported).toEqual(keys((r) => (observation(r) && r.status === 'amended') || (r.resourceType === 'Patient' && r.name?.some((n: Json) => fold(n.family).startsWith('mul')))));
  });

  it('refuses a bad _typeFilter under strict with 400 naming it, and drops and reports it under lenient', async () => {
    for (const bad of ['Observation?_include=Observation:subject', 'Observation?nonsense=1', 'Observation?date=yesterday', 'Spaceship?x=1', 'Observation?status:exact=final', 'status=final']) {
      const res = await fetch(`${stack.fhir}/$export?_type=Observation${typeFilter(bad)}`, { headers: kickoffHeaders });
      expect(res.status).toBe(400);
      const outcome = (await res.json()) as { resourceType: string; issue: Array<{ expression: string[]; diagnostics: string }> };
      expect(outcome.resourceType).toBe('OperationOutcome');
      expect(outcome.issue[0].expression).toEqual(['_typeFilter']);
    }
    const notExported = await fetch(`${stack.fhir}/$export?_type=Patient${typeFilter('Observation?status=final')}`, { headers: kickoffHeaders });
    expect(notExported.status).toBe(400);

    const res = await fetch(`${stack.fhir}/$export?_type=Observation${typeFilter('Observation?nonsense=1', 'Observation?status=amended')}`, {
      headers: { ...kickoffHeaders, Prefer: 'respond-async, handling=lenient' },
    });
    expect(res.status).toBe(202);
    const { manifest } = await pollUntilDone(res.headers.get('content-location')!);
    expect((await downloadAll(manifest)).keys.sort()).toEqual(keys((r) => observation(r) && r.status === 'amended'));
    const errors = (await (await fetch(manifest.error[0].url)).text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(errors).toHaveLength(1);
    expect(errors[0].issue[0].diagnostics).toContain('nonsense');
  });

  it('reports only the deletions whose last version matched the filter', async () => {
    const since = await stack.store.snapshotTime();
    const weights = all().filter((r) => observation(r) && hasCode(r.code, undefined, '29463-7'));
    const heights = all().filter((r) => observation(r) && hasCode(r.code, undefined, '8302-2'));
    await stack.store.write([
      { op: 'delete', resourceType: 'Observation', id: weights[0].id },
      { op: 'delete', resourceType: 'Observation', id: heights[0].id },
    ]);
    const { manifest, keys: exported } = await exportKeys(`?_type=Observation&_since=${encodeURIComponent(since)}${typeFilter('Observation?code=29463-7')}`);
    expect(exported).toEqual([]);
    expect(await downloadDeleted(manifest)).toEqual([`Observation/${weights[0].id}`]);
  });
});
