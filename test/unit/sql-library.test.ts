import { OperationOutcomeError } from '../../src/fhir/outcome-error';
import { readSqlLibrary, sqlLibraryKind, sqlParameterValues } from '../../src/sql/sql-library';

const base64 = (text: string) => Buffer.from(text).toString('base64');
const SYSTEM = 'http://hl7.org/fhir/uv/sql-on-fhir/CodeSystem/LibraryTypesCodes';

const query = (overrides: Record<string, unknown> = {}) => ({
  resourceType: 'Library',
  url: 'http://example.org/Library/bp-by-gender',
  name: 'BpByGender',
  status: 'active',
  type: { coding: [{ system: SYSTEM, code: 'sql-query' }] },
  content: [{ contentType: 'application/sql', data: base64('SELECT gender, count(*) FROM patients p JOIN obs o ON o.patient_id = p.id WHERE o.code = :code GROUP BY gender') }],
  relatedArtifact: [
    { type: 'depends-on', resource: 'http://example.org/ViewDefinition/patients', label: 'patients' },
    { type: 'depends-on', resource: 'http://example.org/ViewDefinition/obs|2.0', label: 'obs' },
  ],
  parameter: [{ name: 'code', type: 'string', use: 'in' }],
  ...overrides,
});

function issuesOf(fn: () => unknown): Array<{ code: string; expression?: string[] }> {
  try {
    fn();
  } catch (err) {
    if (err instanceof OperationOutcomeError) return err.issues.map((i) => ({ code: i.code, expression: i.expression }));
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('readSqlLibrary', () => {
  it('reads the SQL, its tables and its parameters', () => {
    expect(readSqlLibrary(query())).toEqual({
      kind: 'sql-query',
      url: 'http://example.org/Library/bp-by-gender',
      name: 'BpByGender',
      sql: 'SELECT gender, count(*) FROM patients p JOIN obs o ON o.patient_id = p.id WHERE o.code = :code GROUP BY gender',
      dependencies: [
        { label: 'patients', url: 'http://example.org/ViewDefinition/patients' },
        { label: 'obs', url: 'http://example.org/ViewDefinition/obs', version: '2.0' },
      ],
      parameters: [{ name: 'code', type: 'string' }],
    });
  });

  it('accepts the older code system peers still send, and tells SQL Libraries from others', () => {
    expect(sqlLibraryKind(query({ type: { coding: [{ system: 'https://sql-on-fhir.org/ig/CodeSystem/LibraryTypesCodes', code: 'sql-view' }] } }))).toBe('sql-view');
    expect(sqlLibraryKind(query({ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/library-type', code: 'logic-library' }] } }))).toBeUndefined();
    expect(sqlLibraryKind({ resourceType: 'ViewDefinition' })).toBeUndefined();
  });

  it('takes the duckdb attachment first, then the dialect-free one, never another dialect', () => {
    const content = [
      { contentType: 'application/sql;dialect=postgresql', data: base64('SELECT 1 AS pg') },
      { contentType: 'application/sql', data: base64('SELECT 1 AS plain') },
      { contentType: 'application/sql; dialect=duckdb', data: base64('SELECT 1 AS duck') },
    ];
    expect(readSqlLibrary(query({ content })).sql).toBe('SELECT 1 AS duck');
    expect(readSqlLibrary(query({ content: content.slice(0, 2) })).sql).toBe('SELECT 1 AS plain');
    const only = issuesOf(() => readSqlLibrary(query({ content: content.slice(0, 1) })));
    expect(only).toEqual([{ code: 'processing', expression: ['subject.content'] }]);
  });

  it('runs the SQL in data: the sql-text extension is a copy for people, and no substitute for data', () => {
    const sqlText = { url: 'http://hl7.org/fhir/uv/sql-on-fhir/StructureDefinition/sql-text', valueString: 'SELECT 2' };
    expect(readSqlLibrary(query({ content: [{ contentType: 'application/sql', data: base64('SELECT 1'), extension: [sqlText] }] })).sql).toBe('SELECT 1');
    expect(issuesOf(() => readSqlLibrary(query({ content: [{ contentType: 'application/sql', extension: [sqlText] }] })))).toEqual([{ code: 'required', expression: ['subject.content[0].data'] }]);
  });

  it('reports every problem at once, each naming its element', () => {
    const broken = query({
      content: [{ contentType: 'text/plain', data: base64('x') }, { contentType: 'application/sql' }],
      relatedArtifact: [
        { type: 'depends-on', resource: 'http://example.org/ViewDefinition/a', label: 'select' },
        { type: 'depends-on', resource: 'http://example.org/ViewDefinition/b', label: '1bad' },
        { type: 'depends-on', resource: 'http://example.org/ViewDefinition/c', label: 'dup' },
        { type: 'depends-on', resource: 'http://example.org/ViewDefinition/d', label: 'DUP' },
        { type: 'composed-of', resource: 'http://example.org/ViewDefinition/e', label: 'e' },
        { type: 'depends-on', label: 'f' },
      ],
      parameter: [
        { name: 'p', type: 'string', use: 'in' },
        { name: 'p', type: 'string', use: 'in' },
        { name: 'q', type: 'Quantity', use: 'in' },
        { name: 'r', type: 'string', use: 'out' },
      ],
    });
    expect(issuesOf(() => readSqlLibrary(broken)).map((i) => i.expression![0])).toEqual([
      'subject.content[0].contentType',
      'subject.content[1].data',
      'subject.relatedArtifact[0].label',
      'subject.relatedArtifact[1].label',
      'subject.relatedArtifact[3].label',
      'subject.relatedArtifact[4].type',
      'subject.relatedArtifact[5].resource',
      'subject.parameter[1].name',
      'subject.parameter[2].type',
      'subject.parameter[3].use',
    ]);
  });

  it('refuses parameters on a SQLView, and a resource that is no SQL Library', () => {
    const view = query({ type: { coding: [{ system: SYSTEM, code: 'sql-view' }] } });
    expect(issuesOf(() => readSqlLibrary(view))).toEqual([{ code: 'invalid', expression: ['subject.parameter[0]'] }]);
    expect(issuesOf(() => readSqlLibrary({ resourceType: 'Patient' }))).toEqual([{ code: 'invalid', expression: ['subject'] }]);
  });
});

describe('sqlParameterValues', () => {
  const declared = [
    { name: 'code', type: 'string' as const },
    { name: 'n', type: 'integer' as const },
    { name: 'from', type: 'date' as const },
  ];
  const given = (...parameter: unknown[]) => ({ resourceType: 'Parameters', parameter });

  it('binds each declared parameter from its value element', () => {
    expect(sqlParameterValues(declared, given({ name: 'code', valueString: "Smith'; DROP TABLE t; --" }, { name: 'n', valueInteger: 3 }, { name: 'from', valueDate: '2020-01' }))).toEqual([
      { name: 'code', type: 'string', value: "Smith'; DROP TABLE t; --" },
      { name: 'n', type: 'integer', value: 3 },
      { name: 'from', type: 'date', value: '2020-01' },
    ]);
  });

  it.each([
    ['an undeclared name', given({ name: 'code', valueString: 'x' }, { name: 'n', valueInteger: 1 }, { name: 'from', valueDate: '2020' }, { name: 'other', valueString: 'x' })],
    ['a missing one', given({ name: 'code', valueString: 'x' }, { name: 'n', valueInteger: 1 })],
    ['a type mismatch', given({ name: 'code', valueInteger: 1 }, { name: 'n', valueInteger: 1 }, { name: 'from', valueDate: '2020' })],
    ['a value of the wrong shape', given({ name: 'code', valueString: 'x' }, { name: 'n', valueInteger: 1.5 }, { name: 'from', valueDate: '2020-13-45x' })],
    ['a name given twice', given({ name: 'code', valueString: 'x' }, { name: 'code', valueString: 'y' }, { name: 'n', valueInteger: 1 }, { name: 'from', valueDate: '2020' })],
    ['no Parameters resource', { resourceType: 'Patient' }],
  ])('refuses %s with a 400 naming parameters', (_what, values) => {
    const issues = issuesOf(() => sqlParameterValues(declared, values));
    expect(issues.length).toBeGreaterThan(0);
    expect(issues.every((i) => i.code === 'invalid' && i.expression![0].startsWith('parameters'))).toBe(true);
  });
});
