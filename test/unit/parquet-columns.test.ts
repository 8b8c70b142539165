import { OperationOutcomeError } from '../../src/fhir/outcome-error';
import { parquetColumns } from '../../src/views/parquet-columns';
import type { ViewColumn } from '../../src/views/view-definition';

const column = (name: string, extra: Partial<ViewColumn> = {}): ViewColumn => ({ name, path: name, collection: false, tags: [], ...extra });
const ansi = (value: string) => ({ tags: [{ name: 'ansi/type', value }] });

describe('Parquet columns of a view', () => {
  it('types columns from ansi/type tags first, then FHIR types, else text; collections as JSON', () => {
    const columns = parquetColumns([
      column('a', { type: 'integer' }),
      column('b', { type: 'decimal' }),
      column('c', { type: 'date' }),
      column('d', { type: 'date', ...ansi('DATE') }),
      column('e', ansi('TIMESTAMP')),
      column('f', ansi('VARCHAR(64)')),
      column('g', { type: 'integer64' }),
      column('h', { collection: true, type: 'string' }),
      column('i', { type: 'boolean' }),
    ]);
    expect(columns.map((c) => [c.element.type, c.element.converted_type ?? null])).toEqual([
      ['INT32', null],
      ['DOUBLE', null],
      ['BYTE_ARRAY', 'UTF8'],
      ['INT32', 'DATE'],
      ['INT64', 'TIMESTAMP_MILLIS'],
      ['BYTE_ARRAY', 'UTF8'],
      ['INT64', null],
      ['BYTE_ARRAY', 'JSON'],
      ['BOOLEAN', null],
    ]);
    expect(columns.every((c) => c.element.repetition_type === 'OPTIONAL')).toBe(true);
    const [a, , c, d, e, f, g, h] = columns;
    expect([a.convert(3), a.convert(null), c.convert('1980-02'), d.convert('1970-01-02'), g.convert('9007199254740993'), h.convert(['x'])]).toEqual([3, null, '1980-02', 1, 9007199254740993n, ['x']]);
    expect((e.convert('2024-05-01T10:00:00+02:00') as Date).toISOString()).toBe('2024-05-01T08:00:00.000Z');
    expect(f.convert({ a: 1 })).toBe('{"a":1}');
  });

  it('fails a value that does not fit its column, naming the column', () => {
    const [int, date] = parquetColumns([column('count', { type: 'integer' }), column('born', ansi('DATE'))]);
    expect(() => int.convert('seven')).toThrow(/Column count is a 32-bit integer/);
    expect(() => date.convert('1980-02')).toThrow(OperationOutcomeError);
  });

  it('refuses an ansi/type that has no Parquet type', () => {
    expect(() => parquetColumns([column('shape', ansi('GEOMETRY'))])).toThrow(/ansi\/type "GEOMETRY"/);
  });
});
