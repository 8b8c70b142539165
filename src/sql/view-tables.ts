/**
 * A ViewDefinition's rows as a table of the SQL engine: each column typed from its
 * `column.type` (integers BIGINT, decimals DOUBLE, booleans BOOLEAN; everything else, dates
 * included, text, as the view writes them: a FHIR date may be partial), a collection or complex
 * value as its JSON text. The rows stream from the view runner batch by batch.
 */
import { viewRows } from '../views/run-view';
import type { CompiledView, ViewColumn } from '../views/view-definition';
import type { SqlTable, TableColumnType } from './engine-types';

const COLUMN_TYPES: Record<string, TableColumnType> = {
  boolean: 'BOOLEAN',
  integer: 'BIGINT',
  positiveInt: 'BIGINT',
  unsignedInt: 'BIGINT',
  integer64: 'BIGINT',
  decimal: 'DOUBLE',
};

export function tableColumnType(column: ViewColumn): TableColumnType {
  return column.collection ? 'VARCHAR' : (COLUMN_TYPES[column.type ?? ''] ?? 'VARCHAR');
}

/** A row's values as the table's columns hold them. */
function tableValue(type: TableColumnType, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (type === 'VARCHAR') return typeof value === 'string' ? value : JSON.stringify(value);
  if (type === 'BIGINT' && typeof value === 'string') return BigInt(value); // integer64 comes as text
  return value;
}

/** The view over `resources` (in batches) as the table `label`. */
export function viewTable(label: string, view: CompiledView, resources: AsyncIterable<Record<string, unknown>[]> | Iterable<Record<string, unknown>[]>): SqlTable {
  const columns = view.columns.map((column) => ({ name: column.name, type: tableColumnType(column) }));
  return {
    name: label,
    columns,
    rows: (async function* () {
      for await (const batch of resources) {
        const rows: unknown[][] = [];
        for (const resource of batch) for (const row of viewRows(view, resource)) rows.push(row.map((value, i) => tableValue(columns[i]!.type, value)));
        if (rows.length > 0) yield rows;
      }
    })(),
  };
}
