/**
 * A view's columns as Parquet columns: the physical and logical type from the column's
 * `ansi/type` tag when it has one, else from its FHIR `type`, and how each value converts. All
 * columns are optional (null is a null). FHIR dates and times stay text unless a tag asks for
 * DATE or TIMESTAMP (a FHIR date may be partial: `1980-02`); collections and complex values are
 * JSON text. A value that does not fit its column's type fails naming the column. Pure.
 */
import { OperationOutcomeError } from '../fhir/outcome-error';
import type { ViewColumn } from './view-definition';

/** The Parquet schema element of one column (hyparquet's SchemaElement subset bulkflow writes). */
export interface ParquetElement {
  name: string;
  type: 'BOOLEAN' | 'INT32' | 'INT64' | 'DOUBLE' | 'BYTE_ARRAY';
  converted_type?: 'UTF8' | 'JSON' | 'DATE' | 'TIMESTAMP_MILLIS';
  repetition_type: 'OPTIONAL';
}

export interface ParquetColumn {
  element: ParquetElement;
  convert(value: unknown): unknown;
}

type Kind = 'boolean' | 'int32' | 'int64' | 'double' | 'string' | 'json' | 'date' | 'timestamp';

const FHIR_TYPE_KINDS: Record<string, Kind> = {
  boolean: 'boolean',
  integer: 'int32',
  positiveInt: 'int32',
  unsignedInt: 'int32',
  integer64: 'int64',
  decimal: 'double',
};

/** `ansi/type` values (SQL types) to kinds; parameters such as `VARCHAR(64)` or `DECIMAL(10,2)` are read by their name. */
const ANSI_KINDS: Record<string, Kind> = {
  BOOLEAN: 'boolean',
  SMALLINT: 'int32',
  INTEGER: 'int32',
  INT: 'int32',
  BIGINT: 'int64',
  DOUBLE: 'double',
  'DOUBLE PRECISION': 'double',
  FLOAT: 'double',
  REAL: 'double',
  DECIMAL: 'double',
  NUMERIC: 'double',
  DATE: 'date',
  TIMESTAMP: 'timestamp',
  'TIMESTAMP WITH TIME ZONE': 'timestamp',
  VARCHAR: 'string',
  CHAR: 'string',
  'CHARACTER VARYING': 'string',
  TEXT: 'string',
};

const ELEMENTS: Record<Kind, Omit<ParquetElement, 'name' | 'repetition_type'>> = {
  boolean: { type: 'BOOLEAN' },
  int32: { type: 'INT32' },
  int64: { type: 'INT64' },
  double: { type: 'DOUBLE' },
  string: { type: 'BYTE_ARRAY', converted_type: 'UTF8' },
  json: { type: 'BYTE_ARRAY', converted_type: 'JSON' },
  date: { type: 'INT32', converted_type: 'DATE' },
  timestamp: { type: 'INT64', converted_type: 'TIMESTAMP_MILLIS' },
};

function kindOf(column: ViewColumn): Kind {
  if (column.collection) return 'json';
  const ansi = column.tags.find((t) => t.name === 'ansi/type')?.value;
  if (ansi) {
    const kind = ANSI_KINDS[ansi.toUpperCase().replace(/\s*\(.*\)\s*$/, '').trim()];
    if (!kind) throw OperationOutcomeError.invalid(`Column ${column.name}: the ansi/type ${JSON.stringify(ansi)} has no Parquet type here`, column.name);
    return kind;
  }
  return (column.type && FHIR_TYPE_KINDS[column.type]) || 'string';
}

const DAY_MS = 86_400_000;

function converter(kind: Kind, column: string): (value: unknown) => unknown {
  const misfit = (value: unknown, what: string) =>
    new OperationOutcomeError('processing', `Column ${column} is ${what} in Parquet, but a row has ${JSON.stringify(value)}`, { expression: [column] });
  switch (kind) {
    case 'boolean':
      return (v) => {
        if (typeof v !== 'boolean') throw misfit(v, 'a boolean');
        return v;
      };
    case 'int32':
      return (v) => {
        if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) > 2 ** 31) throw misfit(v, 'a 32-bit integer');
        return v;
      };
    case 'int64':
      return (v) => {
        if (!(typeof v === 'number' && Number.isInteger(v)) && !(typeof v === 'string' && /^-?\d+$/.test(v))) throw misfit(v, 'a 64-bit integer');
        return BigInt(v);
      };
    case 'double':
      return (v) => {
        if (typeof v !== 'number') throw misfit(v, 'a number');
        return v;
      };
    case 'date':
      return (v) => {
        if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(v)) throw misfit(v, 'a DATE (a full date)');
        return Math.round(Date.parse(`${v}T00:00:00Z`) / DAY_MS);
      };
    case 'timestamp':
      return (v) => {
        const ms = typeof v === 'string' && /T\d{2}:\d{2}/.test(v) ? Date.parse(v) : NaN;
        if (Number.isNaN(ms)) throw misfit(v, 'a TIMESTAMP (a date-time with a time)');
        return new Date(ms);
      };
    case 'json':
      return (v) => v; // the writer serializes JSON columns itself
    case 'string':
      return (v) => (typeof v === 'string' ? v : JSON.stringify(v));
  }
}

export function parquetColumns(columns: ViewColumn[]): ParquetColumn[] {
  return columns.map((column) => {
    const kind = kindOf(column);
    const convert = converter(kind, column.name);
    return { element: { name: column.name, ...ELEMENTS[kind], repetition_type: 'OPTIONAL' }, convert: (v) => (v === null || v === undefined ? null : convert(v)) };
  });
}
