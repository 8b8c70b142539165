/** The ViewDefinition runner on cases of its own: structure, evaluation, and every refusal. */
import { OperationOutcomeError } from '../../src/fhir/outcome-error';
import { rowObject, viewRows } from '../../src/views/run-view';
import { compileView } from '../../src/views/view-definition';
import { csvLine, rowEncoder } from '../../src/views/row-formats';

const patient = {
  resourceType: 'Patient',
  id: 'p1',
  active: true,
  birthDate: '1980-02',
  name: [
    { use: 'official', family: 'Ng', given: ['Ada', 'B'] },
    { use: 'nickname', given: ['Addy'] },
  ],
  telecom: [{ system: 'phone', value: '555' }],
  managingOrganization: { reference: 'Organization/o9' },
  deceasedBoolean: false,
};
const observation = {
  resourceType: 'Observation',
  id: 'o1',
  subject: { reference: 'https://example.org/fhir/Patient/p1/_history/3' },
  code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
  valueQuantity: { value: 72.5, unit: 'beats/min' },
  effectiveDateTime: '2024-05-01T10:00:00Z',
};

const rows = (view: unknown, resource: Record<string, unknown>) => {
  const compiled = compileView(view);
  return viewRows(compiled, resource).map((r) => rowObject(compiled, r));
};

function refusal(view: unknown): OperationOutcomeError {
  try {
    compileView(view);
  } catch (err) {
    if (err instanceof OperationOutcomeError) return err;
    throw err;
  }
  throw new Error('the view was accepted');
}

describe('ViewDefinition runner', () => {
  it('flattens a flat Observation view: keys, choice types through ofType, nested paths', () => {
    const view = {
      resource: 'Observation',
      select: [
        {
          column: [
            { name: 'id', path: 'getResourceKey()' },
            { name: 'patient', path: 'subject.getReferenceKey(Patient)' },
            { name: 'not_org', path: 'subject.getReferenceKey(Organization)' },
            { name: 'system', path: 'code.coding.first().system' },
            { name: 'code', path: 'code.coding.first().code' },
            { name: 'value', path: 'value.ofType(Quantity).value', type: 'decimal' },
            { name: 'unit', path: 'value.ofType(Quantity).unit' },
            { name: 'effective', path: 'effective.ofType(dateTime)', type: 'dateTime' },
          ],
        },
      ],
    };
    expect(rows(view, observation)).toEqual([
      { id: 'o1', patient: 'p1', not_org: null, system: 'http://loinc.org', code: '8867-4', value: 72.5, unit: 'beats/min', effective: '2024-05-01T10:00:00Z' },
    ]);
    expect(rows(view, patient)).toEqual([]); // another type yields nothing
  });

  it('gives a view that never iterates or branches one row, its columns in the order the select tree gives them', () => {
    const view = compileView({
      resource: 'Patient',
      select: [
        { column: [{ name: 'id', path: 'id' }], select: [{ column: [{ name: 'family', path: "name.where(use = 'official').family" }] }] },
        { select: [{ column: [{ name: 'given', path: 'name.given', collection: true }] }], column: [{ name: 'org', path: 'managingOrganization.getReferenceKey(Organization)' }] },
        { column: [{ name: 'deceased', path: 'deceased.ofType(boolean)' }] },
      ],
    });
    expect(view.flat?.map((c) => c.name)).toEqual(view.columns.map((c) => c.name));
    expect(view.columns.map((c) => c.name)).toEqual(['id', 'family', 'org', 'given', 'deceased']);
    // The same row as joining the selects one by one.
    expect(viewRows(view, patient)).toEqual(viewRows({ ...view, flat: undefined }, patient));
    expect(viewRows(view, patient).map((r) => rowObject(view, r))).toEqual([{ id: 'p1', family: 'Ng', org: 'o9', given: ['Ada', 'B', 'Addy'], deceased: false }]);
    // Iterating or branching anywhere in the tree takes the general path.
    expect(compileView({ resource: 'Patient', select: [{ column: [{ name: 'id', path: 'id' }] }, { forEach: 'name', column: [{ name: 'f', path: 'family' }] }] }).flat).toBeUndefined();
    expect(compileView({ resource: 'Patient', select: [{ unionAll: [{ column: [{ name: 'v', path: 'id' }] }, { column: [{ name: 'v', path: 'gender' }] }] }] }).flat).toBeUndefined();
  });

  it('forEach, forEachOrNull, nested selects and unionAll combine as products, with %rowIndex per level', () => {
    const view = {
      resource: 'Patient',
      select: [
        { column: [{ name: 'id', path: 'id' }] },
        { forEach: 'name', column: [{ name: 'n', path: '%rowIndex' }, { name: 'use', path: 'use' }], select: [{ forEachOrNull: 'given.where(false)', column: [{ name: 'never', path: '$this' }] }] },
        { unionAll: [{ forEach: 'telecom', column: [{ name: 'contact', path: 'value' }] }, { column: [{ name: 'contact', path: "'none'" }] }] },
      ],
    };
    expect(rows(view, patient)).toEqual([
      { id: 'p1', n: 0, use: 'official', never: null, contact: '555' },
      { id: 'p1', n: 0, use: 'official', never: null, contact: 'none' },
      { id: 'p1', n: 1, use: 'nickname', never: null, contact: '555' },
      { id: 'p1', n: 1, use: 'nickname', never: null, contact: 'none' },
    ]);
  });

  it('keeps collections as arrays, applies where, substitutes typed constants, computes boundaries', () => {
    const view = {
      resource: 'Patient',
      constant: [
        { name: 'use', valueCode: 'official' },
        { name: 'born', valueDate: '1980-02' },
      ],
      where: [{ path: 'active' }, { path: 'name.where(use = %use).exists()' }],
      select: [
        {
          column: [
            { name: 'given', path: 'name.where(use = %use).given', collection: true },
            { name: 'same_birth', path: 'birthDate = %born' },
            { name: 'born_from', path: 'birthDate.lowBoundary()' },
            { name: 'born_to', path: 'birthDate.highBoundary()' },
            { name: 'org', path: 'managingOrganization.getReferenceKey()' },
            { name: 'joined', path: "name.given.join('|')" },
          ],
        },
      ],
    };
    expect(rows(view, patient)).toEqual([{ given: ['Ada', 'B'], same_birth: true, born_from: '1980-02-01', born_to: '1980-02-29', org: 'o9', joined: 'Ada|B|Addy' }]);
    expect(rows(view, { ...patient, active: false })).toEqual([]);
  });

  it('walks repeat depth first', () => {
    const qr = { resourceType: 'QuestionnaireResponse', id: 'q', item: [{ linkId: '1', item: [{ linkId: '1.1' }] }, { linkId: '2', answer: [{ item: [{ linkId: '2.a' }] }] }] };
    const view = { resource: 'QuestionnaireResponse', select: [{ repeat: ['item', 'answer.item'], column: [{ name: 'link', path: 'linkId' }, { name: 'i', path: '%rowIndex' }] }] };
    expect(rows(view, qr)).toEqual([
      { link: '1', i: 0 },
      { link: '1.1', i: 1 },
      { link: '2', i: 2 },
      { link: '2.a', i: 3 },
    ]);
  });

  it('reports every structural problem in one 400 OperationOutcome, naming each path', () => {
    const error = refusal({ select: [{ column: [{ name: '1bad', path: 'id' }, { path: 'x' }], forEach: 'a', repeat: ['b'] }], where: {} });
    expect(error.status).toBe(400);
    const at = error.issues.map((i) => i.expression?.[0]);
    expect(at).toEqual(expect.arrayContaining(['resource', 'select[0]', 'select[0].column[0].name', 'select[0].column[1].name', 'where']));
    expect(refusal({ resource: 'Patient', select: [{ column: [{ name: 'a', path: 'id' }] }, { column: [{ name: 'a', path: 'gender' }] }] }).issues[0].diagnostics).toMatch(/a is used twice/);
    expect(refusal({ resource: 'NotAType', select: [{ column: [{ name: 'a', path: 'id' }] }] }).issues[0].expression).toEqual(['resource']);
    expect(refusal({ resource: 'Patient', constant: [{ name: 'c', valueString: 'x', valueCode: 'y' }], select: [{ column: [{ name: 'a', path: 'id' }] }] }).issues[0].expression).toEqual(['constant[0]']);
  });

  it('refuses unparsable FHIRPath, unknown constants and mismatched unionAll branches with 422', () => {
    const parse = refusal({ resource: 'Patient', select: [{ column: [{ name: 'a', path: 'name.(' }] }] });
    expect(parse.status).toBe(422);
    expect(parse.issues[0].expression).toEqual(['select[0].column[0].path']);
    expect(refusal({ resource: 'Patient', select: [{ forEach: 'name.where(use = %nope)', column: [{ name: 'a', path: 'family' }] }] }).issues[0].diagnostics).toMatch(/%nope/);
    const union = refusal({ resource: 'Patient', select: [{ unionAll: [{ column: [{ name: 'a', path: 'id' }] }, { column: [{ name: 'b', path: 'id' }] }] }] });
    expect(union.status).toBe(422);
    expect(union.issues[0].expression).toEqual(['select[0].unionAll[1]']);
  });

  it('fails evaluation naming the column and the resource: several values in a plain column, a where that is not boolean', () => {
    const several = compileView({ resource: 'Patient', select: [{ column: [{ name: 'given', path: 'name.given' }] }] });
    expect(() => viewRows(several, patient)).toThrow(/Column given .* has 3 values for Patient\/p1/);
    const notBoolean = compileView({ resource: 'Patient', where: [{ path: 'name.family' }], select: [{ column: [{ name: 'id', path: 'id' }] }] });
    expect(() => viewRows(notBoolean, patient)).toThrow(/not one boolean/);
  });
});

describe('row formats', () => {
  const view = compileView({ resource: 'Patient', select: [{ column: [{ name: 'id', path: 'id' }, { name: 'given', path: 'name.given', collection: true }, { name: 'note', path: "'a \"b\", c'" }] }] });
  const row = viewRows(view, patient)[0];

  it('CSV quotes per RFC 4180, writes collections as JSON text and null as an empty field', () => {
    const csv = rowEncoder('csv', view.columns, { header: true });
    expect(csv.start).toBe('id,given,note\r\n');
    expect(csv.row(row, 0)).toBe('p1,"[""Ada"",""B"",""Addy""]","a ""b"", c"\r\n');
    expect(csvLine([null, 'x\ny', 3])).toBe(',"x\ny",3\r\n');
    expect(rowEncoder('csv', view.columns, { header: false }).start).toBe('');
  });

  it('JSON is one array of objects, NDJSON one object a line, columns in view order', () => {
    const json = rowEncoder('json', view.columns, { header: true });
    expect(JSON.parse(json.start + json.row(row, 0) + json.row(row, 1) + json.end)).toHaveLength(2);
    const line = rowEncoder('ndjson', view.columns, { header: true }).row(row, 0);
    expect(line.endsWith('\n')).toBe(true);
    expect(Object.keys(JSON.parse(line))).toEqual(['id', 'given', 'note']);
  });
});
