/** A SQL result's columns as FHIR values (`_format=fhir`) and as the row writers' columns. */
import { OperationOutcomeError } from '../../src/fhir/outcome-error';
import { fhirRowsEncoder, writerColumns, type ResultColumn } from '../../src/sql/result-columns';

const columns: ResultColumn[] = [
  { name: 'gender', type: 'VARCHAR', kind: 'string' },
  { name: 'n', type: 'BIGINT', kind: 'integer64' },
  { name: 'small', type: 'INTEGER', kind: 'integer' },
  { name: 'avg', type: 'DOUBLE', kind: 'decimal' },
  { name: 'born', type: 'DATE', kind: 'date' },
  { name: 'at', type: 'TIMESTAMP WITH TIME ZONE', kind: 'instant' },
  { name: 'ok', type: 'BOOLEAN', kind: 'boolean' },
];

describe('fhir rows', () => {
  it('types each value by its SQL type, writes integer64 as a string and omits nulls', () => {
    const encoder = fhirRowsEncoder(columns);
    const text = encoder.start + encoder.row(['female', 12, 3, 1.5, '1980-02-01', '2020-01-01T00:00:00.000Z', true], 0) + encoder.row([null, 0, null, null, null, null, false], 1) + encoder.row([null, null, null, null, null, null, null], 2) + encoder.end;
    expect(JSON.parse(text)).toEqual({
      resourceType: 'Parameters',
      parameter: [
        {
          name: 'row',
          part: [
            { name: 'gender', valueString: 'female' },
            { name: 'n', valueInteger64: '12' },
            { name: 'small', valueInteger: 3 },
            { name: 'avg', valueDecimal: 1.5 },
            { name: 'born', valueDate: '1980-02-01' },
            { name: 'at', valueInstant: '2020-01-01T00:00:00.000Z' },
            { name: 'ok', valueBoolean: true },
          ],
        },
        { name: 'row', part: [{ name: 'n', valueInteger64: '0' }, { name: 'ok', valueBoolean: false }] },
        { name: 'row' },
      ],
    });
    expect(encoder.contentType).toBe('application/fhir+json');
  });

  it('refuses nested columns with a 422 naming each', () => {
    const nested: ResultColumn[] = [...columns, { name: 'codes', type: 'VARCHAR[]', kind: 'nested' }, { name: 'span', type: 'INTERVAL', kind: 'nested' }];
    let error: unknown;
    try {
      fhirRowsEncoder(nested);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(OperationOutcomeError);
    expect((error as OperationOutcomeError).code).toBe('processing');
    expect((error as OperationOutcomeError).issues[0].expression).toEqual(['codes', 'span']);
    expect((error as Error).message).toContain('codes (VARCHAR[])');
  });

  it('gives the writers an ansi/type for each flat kind and JSON for nested ones', () => {
    const out = writerColumns([...columns, { name: 'codes', type: 'VARCHAR[]', kind: 'nested' }]);
    expect(out.map((c) => (c.collection ? 'json' : c.tags[0]!.value))).toEqual(['VARCHAR', 'BIGINT', 'INTEGER', 'DOUBLE', 'DATE', 'TIMESTAMP', 'BOOLEAN', 'json']);
  });
});
