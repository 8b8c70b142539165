/**
 * The fast paths (fast-paths.ts, at the resource and inside forEach) against the FHIRPath engine
 * alone (`compileView(view, { fastPaths: false })`): the same rows, value for value and type for
 * type, or the same error, on every case of the official SQL on FHIR suite, on a generated
 * population, and on views and resources a property test makes up (missing, repeated, null and
 * oddly typed elements). The expected rows come from the engine, never from the fast paths.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { SUITE_NOT_RUN, sqlOnFhirSuiteDir } from '../../conformance/suite-location';
import { generatePopulation } from '../../src/generate/population';
import { viewRows } from '../../src/views/run-view';
import { compileView, type CompiledSelect, type CompiledView } from '../../src/views/view-definition';
import { FLAT_OBSERVATION_VIEW, OBSERVATION_CODINGS_VIEW } from '../../bench/views';

type Outcome = { rows: unknown[][] } | { error: string };

/** The rows `view` gives over `resources`, or the first error, through one evaluation path. */
function evaluate(view: unknown, resources: Record<string, unknown>[], fastPaths: boolean): Outcome {
  try {
    const compiled = compileView(view, { fastPaths });
    return { rows: resources.flatMap((resource) => viewRows(compiled, resource)) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** How many of a view's expressions the fast paths evaluate (0: the comparison proves nothing for it). */
function fastExpressions(view: unknown): number {
  let compiled: CompiledView;
  try {
    compiled = compileView(view);
  } catch {
    return 0;
  }
  const count = (select: CompiledSelect): number =>
    select.columns.filter((c) => c.evaluate.plain).length +
    (select.iterate?.evaluate.filter((e) => e.plain).length ?? 0) +
    [...select.selects, ...select.unionAll].reduce((n, s) => n + count(s), 0);
  return count(compiled.root);
}

function expectSameOutcome(view: unknown, resources: Record<string, unknown>[], label: string): void {
  const engine = evaluate(view, resources, false);
  const fast = evaluate(view, resources, true);
  if (!isDeepStrictEqual(fast, engine)) {
    throw new Error(`${label}: the fast paths give ${JSON.stringify(fast).slice(0, 400)}, the engine ${JSON.stringify(engine).slice(0, 400)}`);
  }
}

describe('view evaluation: fast paths against the FHIRPath engine', () => {
  const suite = sqlOnFhirSuiteDir();
  if (!suite) it.skip(SUITE_NOT_RUN, () => undefined);
  else it('gives the same rows or error on every case of the official suite', () => {
    const dir = path.join(suite, 'tests');
    let cases = 0;
    let fast = 0;
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
      const suite = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { resources: Record<string, unknown>[]; tests: { title: string; view: Record<string, unknown> }[] };
      for (const test of suite.tests) {
        const view = { resourceType: 'ViewDefinition', ...test.view };
        expectSameOutcome(view, suite.resources, `${file} :: ${test.title}`);
        cases++;
        if (fastExpressions(view) > 0) fast++;
      }
    }
    expect(cases).toBe(144);
    // Not vacuous: most cases run some expression through the fast paths.
    expect(fast).toBeGreaterThan(80);
  });

  const population = [...generatePopulation({ patients: 12, seed: 33 })] as unknown as Record<string, unknown>[];
  const VIEWS: Record<string, unknown>[] = [
    FLAT_OBSERVATION_VIEW,
    OBSERVATION_CODINGS_VIEW,
    {
      resource: 'Observation',
      select: [
        { column: [{ name: 'id', path: 'getResourceKey()' }] },
        { forEachOrNull: 'component', column: [{ name: 'code', path: 'code.coding.code', collection: true }, { name: 'value', path: 'value.ofType(Quantity).value' }] },
        { forEach: 'category.coding', column: [{ name: 'category', path: 'code' }] },
      ],
    },
    {
      resource: 'Patient',
      select: [
        { column: [{ name: 'id', path: 'id' }, { name: 'birth', path: 'birthDate' }, { name: 'phone', path: 'telecom.exists()' }] },
        { forEach: 'name', column: [{ name: 'family', path: 'family' }, { name: 'given', path: 'given', collection: true }], select: [{ forEachOrNull: 'period', column: [{ name: 'since', path: 'start' }] }] },
        { forEachOrNull: 'address', column: [{ name: 'city', path: 'city' }, { name: 'lines', path: 'line', collection: true }] },
      ],
    },
    {
      resource: 'Encounter',
      select: [
        { column: [{ name: 'id', path: 'getResourceKey()' }, { name: 'patient', path: 'subject.getReferenceKey(Patient)' }] },
        { forEach: 'participant', column: [{ name: 'who', path: 'individual.getReferenceKey()' }, { name: 'practitioner', path: 'individual.getReferenceKey(Practitioner)' }, { name: 'kind', path: 'type.coding.first().code' }] },
        { unionAll: [{ forEach: 'reasonCode.coding', column: [{ name: 'reason', path: 'code' }] }, { forEach: 'type.coding', column: [{ name: 'reason', path: 'display' }] }] },
      ],
    },
    {
      resource: 'MedicationRequest',
      select: [{ column: [{ name: 'id', path: 'id' }] }, { forEach: 'dosageInstruction', column: [{ name: 'text', path: 'text' }, { name: 'timing', path: 'timing' }] }],
    },
  ];

  it.each(VIEWS.map((view, i) => [String(view.name ?? `${String(view.resource)} view ${i}`), view]))('gives the same rows on a generated population: %s', (label, view) => {
    const resources = population.filter((r) => r.resourceType === (view as { resource: string }).resource);
    expect(resources.length).toBeGreaterThan(0);
    expect(fastExpressions({ resourceType: 'ViewDefinition', ...(view as object) })).toBeGreaterThan(0);
    const rows = evaluate(view, resources, false);
    expect('rows' in rows && rows.rows.length).toBeGreaterThan(0);
    expectSameOutcome(view, resources, label as string);
  });

  it('gives the same rows or error on made-up views over resources with missing, repeated, null and oddly typed elements', () => {
    // A Patient-shaped world: each element as R4 types it, or as no valid resource would have it.
    const primitive = fc.oneof(fc.string({ maxLength: 3 }), fc.integer({ min: -3, max: 3 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
    const repeated = <T>(item: fc.Arbitrary<T>) => fc.oneof(item, fc.array(fc.oneof(item, fc.constant(null)), { maxLength: 3 }));
    const coding = fc.record({ system: repeated(primitive), code: repeated(primitive), display: primitive, _code: fc.constant({ extension: [{ url: 'x', valueString: 'e' }] }) }, { requiredKeys: [] });
    const concept = fc.oneof(fc.record({ coding: repeated(fc.oneof(coding, primitive)), text: primitive }, { requiredKeys: [] }), primitive);
    const humanName = fc.oneof(fc.record({ family: repeated(primitive), given: repeated(primitive), period: fc.oneof(fc.record({ start: primitive }, { requiredKeys: [] }), primitive) }, { requiredKeys: [] }), primitive);
    const reference = fc.oneof(
      fc.record({ reference: fc.oneof(fc.constantFrom('Patient/p1', 'Group/g1', 'http://x/fhir/Patient/p2/_history/3', 'Patient/', 'nonsense'), primitive) }, { requiredKeys: [] }),
      primitive,
    );
    const patient = fc.record(
      {
        resourceType: fc.constantFrom('Patient', 'Patient', 'Patient', 'Observation'),
        id: fc.oneof(fc.constantFrom('p1', 'p2'), primitive),
        active: repeated(primitive),
        birthDate: repeated(primitive),
        name: repeated(humanName),
        maritalStatus: concept,
        managingOrganization: repeated(reference),
        generalPractitioner: repeated(reference),
        communication: repeated(fc.oneof(fc.record({ language: concept, preferred: primitive }, { requiredKeys: [] }), primitive)),
        deceasedBoolean: primitive,
        deceasedDateTime: primitive,
      },
      { requiredKeys: ['resourceType'] },
    );
    // Expressions in the fast paths' subset, from a Patient and from the nodes an iteration reaches.
    const FROM: Record<string, string[]> = {
      Patient: ['id', 'getResourceKey()', 'active', 'birthDate', 'name.family', 'name.given', 'name.first().given', 'name.given.first()', 'name.exists()', 'maritalStatus.coding.code', 'maritalStatus.coding.first().system', 'maritalStatus.text', 'managingOrganization.getReferenceKey()', 'managingOrganization.getReferenceKey(Patient)', 'generalPractitioner.getReferenceKey(Patient)', 'deceased.ofType(boolean)', 'deceased.ofType(dateTime)', 'communication.language.coding.code', 'name.period.start'],
      name: ['family', 'given', 'given.first()', 'period.start', 'period', 'given.exists()'],
      communication: ['language.coding.code', 'language.text', 'preferred', 'language'],
      'maritalStatus.coding': ['system', 'code', 'display', 'code.exists()'],
      generalPractitioner: ['getReferenceKey()', 'getReferenceKey(Patient)', 'reference'],
    };
    const ITERATIONS = ['name', 'communication', 'maritalStatus.coding', 'generalPractitioner'];
    const column = (from: string) => fc.record({ path: fc.constantFrom(...FROM[from]!), collection: fc.boolean() });
    const select = fc.oneof(
      fc.record({ column: fc.array(column('Patient'), { minLength: 1, maxLength: 3 }) }),
      fc.constantFrom(...ITERATIONS).chain((over) =>
        fc.record({ kind: fc.constantFrom('forEach', 'forEachOrNull'), over: fc.constant(over), column: fc.array(column(over), { minLength: 1, maxLength: 3 }) }),
      ),
    );
    const view = fc.array(select, { minLength: 1, maxLength: 3 }).map((selects) => {
      let n = 0;
      const named = (columns: { path: string; collection: boolean }[]) => columns.map((c) => ({ name: `c${n++}`, path: c.path, collection: c.collection }));
      return {
        resourceType: 'ViewDefinition',
        resource: 'Patient',
        select: selects.map((s) => ('kind' in s ? { [s.kind]: s.over, column: named(s.column) } : { column: named(s.column) })),
      };
    });
    let compared = 0;
    fc.assert(
      fc.property(view, fc.array(patient, { minLength: 1, maxLength: 4 }), (v, resources) => {
        if (fastExpressions(v) === 0) return;
        compared++;
        // As the store hands them over: parsed JSON (fast-check's records have no prototype).
        expectSameOutcome(v, JSON.parse(JSON.stringify(resources)) as Record<string, unknown>[], 'a made-up view');
      }),
      { numRuns: 1500, seed: 20261205 },
    );
    expect(compared).toBeGreaterThan(1000);
  });
});
