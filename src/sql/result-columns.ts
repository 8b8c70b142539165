/**
 * What a SQL result's column is, whatever engine type made it: one kind per column, which says
 * how its values travel (JSON, CSV, Parquet) and which `value[x]` carries them in `_format=fhir`
 * (SQL on FHIR v2, SQLRun notes, "SQL to FHIR type mapping"). Values arrive already plain: a
 * boolean, a number (an integer past 2^53 as its digits), a string (dates, times and
 * timestamps as FHIR text, binaries as base64), or JSON for nested values. Pure.
 */
import { OperationOutcomeError } from '../fhir/outcome-error';
import type { ViewColumn } from '../views/view-definition';

export type ResultKind = 'boolean' | 'integer' | 'integer64' | 'decimal' | 'string' | 'base64' | 'date' | 'time' | 'dateTime' | 'instant' | 'nested';

export interface ResultColumn {
  name: string;
  /** The engine's own type name, e.g. `BIGINT`, `DECIMAL(18,3)`, `VARCHAR[]`. */
  type: string;
  kind: ResultKind;
}

/** The spec's table; nested values (INTERVAL, LIST, STRUCT, MAP) have no `value[x]`. */
const FHIR_VALUE: Record<Exclude<ResultKind, 'nested'>, string> = {
  boolean: 'valueBoolean',
  integer: 'valueInteger',
  integer64: 'valueInteger64',
  decimal: 'valueDecimal',
  string: 'valueString',
  base64: 'valueBase64Binary',
  date: 'valueDate',
  time: 'valueTime',
  dateTime: 'valueDateTime',
  instant: 'valueInstant',
};

/** The Parquet (and CSV/JSON) column a kind writes as: an `ansi/type` tag picks the Parquet type. */
const ANSI_TYPE: Record<ResultKind, string | undefined> = {
  boolean: 'BOOLEAN',
  integer: 'INTEGER',
  integer64: 'BIGINT',
  decimal: 'DOUBLE',
  string: 'VARCHAR',
  base64: 'VARCHAR',
  date: 'DATE',
  time: 'VARCHAR',
  dateTime: 'TIMESTAMP',
  instant: 'TIMESTAMP',
  nested: undefined,
};

/** The result's columns as the row writers take view columns. */
export function writerColumns(columns: readonly ResultColumn[]): ViewColumn[] {
  return columns.map(({ name, kind }) => ({ name, path: '', collection: kind === 'nested', tags: ANSI_TYPE[kind] ? [{ name: 'ansi/type', value: ANSI_TYPE[kind] }] : [] }));
}

/** Each column's `value[x]` name for `_format=fhir`; a column that has none is 422 naming it. */
export function fhirValueNames(columns: readonly ResultColumn[]): string[] {
  const untyped = columns.filter((c) => c.kind === 'nested');
  if (untyped.length > 0) {
    throw new OperationOutcomeError('processing', `_format=fhir types each column as a FHIR value; ${untyped.map((c) => `${c.name} (${c.type})`).join(', ')} has none: cast it in the SQL, or ask for json, ndjson or csv`, {
      expression: untyped.map((c) => c.name),
    });
  }
  return columns.map((c) => FHIR_VALUE[c.kind as Exclude<ResultKind, 'nested'>]);
}

const jsonText = (value: string) => JSON.stringify(value);

/**
 * Rows as one `Parameters` resource, streamed: a `row` part per row with a part per non-null
 * column, typed by `value[x]` (NULL omits the part). `valueInteger64` is a JSON string, as FHIR
 * writes integer64.
 */
export function fhirRowsEncoder(columns: readonly ResultColumn[]): { contentType: string; start: string; row(row: readonly unknown[], index: number): string; end: string } {
  const valueNames = fhirValueNames(columns);
  const heads = columns.map((c, i) => `{"name":${jsonText(c.name)},"${valueNames[i]}":`);
  return {
    contentType: 'application/fhir+json',
    start: '{"resourceType":"Parameters","parameter":[',
    row: (row, index) => {
      const parts: string[] = [];
      row.forEach((value, i) => {
        if (value === null || value === undefined) return;
        parts.push(`${heads[i]}${columns[i]!.kind === 'integer64' ? jsonText(String(value)) : JSON.stringify(value)}}`);
      });
      // A row of nulls is a row part without parts (FHIR allows no empty array).
      return `${index > 0 ? ',' : ''}{"name":"row"${parts.length > 0 ? `,"part":[${parts.join(',')}]` : ''}}`;
    },
    end: ']}',
  };
}
