/** ViewDefinitions over FHIR resources, made tables, queried with SQL: the path a SQLQuery takes. */
import { runSql } from '../../src/sql/duckdb-engine';
import { viewTable } from '../../src/sql/view-tables';
import { compileView } from '../../src/views/view-definition';

const patients = [
  { resourceType: 'Patient', id: 'p1', gender: 'female', birthDate: '1980-02', name: [{ given: ['Ann', 'Marie'] }] },
  { resourceType: 'Patient', id: 'p2', gender: 'male', birthDate: '1975-06-01' },
  { resourceType: 'Patient', id: 'p3', gender: 'female' },
];
const observations = [
  { resourceType: 'Observation', id: 'o1', subject: { reference: 'Patient/p1' }, code: { coding: [{ code: '8302-2' }] }, valueQuantity: { value: 170.5 } },
  { resourceType: 'Observation', id: 'o2', subject: { reference: 'Patient/p2' }, code: { coding: [{ code: '8302-2' }] }, valueQuantity: { value: 180 } },
  { resourceType: 'Observation', id: 'o3', subject: { reference: 'Patient/p1' }, code: { coding: [{ code: '29463-7' }] }, valueQuantity: { value: 60 } },
];

const patientView = compileView({
  resourceType: 'ViewDefinition',
  resource: 'Patient',
  select: [{ column: [{ name: 'id', path: 'getResourceKey()' }, { name: 'gender', path: 'gender' }, { name: 'birth', path: 'birthDate', type: 'date' }, { name: 'given', path: 'name.given', collection: true }] }],
});
const observationView = compileView({
  resourceType: 'ViewDefinition',
  resource: 'Observation',
  select: [
    {
      column: [
        { name: 'patient_id', path: 'subject.getReferenceKey(Patient)' },
        { name: 'code', path: 'code.coding.first().code' },
        { name: 'value', path: 'value.ofType(Quantity).value', type: 'decimal' },
      ],
    },
  ],
});

async function all(result: Awaited<ReturnType<typeof runSql>>): Promise<unknown[][]> {
  const out: unknown[][] = [];
  for await (const chunk of result.chunks) out.push(...chunk);
  return out;
}

describe('views as SQL tables', () => {
  it('types columns from column.type, keeps partial dates as text and collections as JSON', async () => {
    const table = viewTable('patient', patientView, [patients]);
    expect(table.columns).toEqual([
      { name: 'id', type: 'VARCHAR' },
      { name: 'gender', type: 'VARCHAR' },
      { name: 'birth', type: 'VARCHAR' },
      { name: 'given', type: 'VARCHAR' },
    ]);
    const result = await runSql({ tables: [table], sql: 'SELECT id, birth, given FROM patient ORDER BY id', parameters: [], limits: { threads: 1, memoryLimit: '128MB', timeoutMs: 5000, maxTableRows: 1_000_000, maxResultRows: 1_000_000, maxResultBytes: Infinity, spillLimitMb: 64 } });
    expect(await all(result)).toEqual([
      ['p1', '1980-02', '["Ann","Marie"]'],
      ['p2', '1975-06-01', '[]'],
      ['p3', null, '[]'],
    ]);
  });

  it('joins two views and counts per gender and code, with a bound parameter', async () => {
    const result = await runSql({
      tables: [viewTable('patients', patientView, [patients.slice(0, 2), patients.slice(2)]), viewTable('obs', observationView, [observations])],
      sql: 'SELECT p.gender, o.code, count(*) AS n, max(o.value) AS highest FROM obs o JOIN patients p ON p.id = o.patient_id WHERE o.value > :min GROUP BY ALL ORDER BY ALL',
      parameters: [{ name: 'min', type: 'decimal', value: 50 }],
      limits: { threads: 1, memoryLimit: '128MB', timeoutMs: 5000, maxTableRows: 1_000_000, maxResultRows: 1_000_000, maxResultBytes: Infinity, spillLimitMb: 64 },
    });
    expect(result.columns.map((c) => `${c.name} ${c.type}`)).toEqual(['gender VARCHAR', 'code VARCHAR', 'n BIGINT', 'highest DOUBLE']);
    expect(await all(result)).toEqual([
      ['female', '29463-7', 1, 60],
      ['female', '8302-2', 1, 170.5],
      ['male', '8302-2', 1, 180],
    ]);
  });
});
