/**
 * Evaluating a compiled ViewDefinition on one resource: the rows it yields, each an array of
 * values in the view's column order (null for an empty non-collection column). Errors that only
 * evaluation can find (several values in a non-collection column, a `where` that is not boolean)
 * name the column and the resource. Pure.
 */
import { OperationOutcomeError } from '../fhir/outcome-error';
import { IrregularData, SEVERAL } from './fast-paths';
import { plainValues } from './fhirpath-engine';
import type { CompiledSelect, CompiledView } from './view-definition';

export type ViewRow = unknown[];

const keyOf = (resource: { resourceType?: unknown; id?: unknown }) => `${String(resource.resourceType)}/${String(resource.id)}`;

/** Every combination of one row from each list, concatenated (an empty list yields no rows). */
function product(left: ViewRow[], right: ViewRow[]): ViewRow[] {
  const out: ViewRow[] = [];
  for (const l of left) for (const r of right) out.push([...l, ...r]);
  return out;
}

/** The nodes `repeat` reaches: each path's results, each followed by everything it reaches in turn (depth first). */
function repeated(select: CompiledSelect, node: unknown, rowIndex: number): unknown[] {
  const out: unknown[] = [];
  const visit = (at: unknown) => {
    for (const evaluate of select.iterate!.evaluate) {
      for (const child of evaluate(at, rowIndex)) {
        out.push(child);
        visit(child);
      }
    }
  };
  visit(node);
  return out;
}

function columnValue(column: CompiledSelect['columns'][number], focus: unknown, rowIndex: number, resource: Record<string, unknown>): unknown {
  if (column.evaluate.one && !column.collection) {
    const value = column.evaluate.one(focus);
    if (value !== SEVERAL) return value === undefined ? null : value; // several: the list below names them in the error
  }
  const evaluated = column.evaluate(focus, rowIndex);
  const values = column.evaluate.plain ? evaluated : plainValues(evaluated);
  if (column.collection) return values;
  if (values.length > 1) {
    throw new OperationOutcomeError('processing', `Column ${column.name} (${column.path}) has ${values.length} values for ${keyOf(resource)}; set collection: true to keep them all`, {
      expression: [column.name],
    });
  }
  return values.length === 0 ? null : values[0];
}

function rowsOf(select: CompiledSelect, node: unknown, rowIndex: number, resource: Record<string, unknown>): ViewRow[] {
  let foci: unknown[] = [node];
  let indexed = false;
  if (select.iterate) {
    foci = select.iterate.kind === 'repeat' ? repeated(select, node, rowIndex) : select.iterate.evaluate[0](node, rowIndex);
    indexed = true;
    if (foci.length === 0) {
      if (select.iterate.kind !== 'forEachOrNull') return [];
      // One row of nulls; its own columns are still evaluated (on nothing), so %rowIndex is 0.
      const own = select.columns.map((column) => columnValue(column, [], 0, resource));
      return [[...own, ...select.width.slice(own.length).map(() => null)]];
    }
  }
  const rows: ViewRow[] = [];
  foci.forEach((focus, i) => {
    const index = indexed ? i : rowIndex;
    let partial: ViewRow[] = [select.columns.map((column) => columnValue(column, focus, index, resource))];
    for (const nested of select.selects) partial = product(partial, rowsOf(nested, focus, index, resource));
    if (select.unionAll.length > 0) partial = product(partial, select.unionAll.flatMap((branch) => rowsOf(branch, focus, index, resource)));
    rows.push(...partial);
  });
  return rows;
}

/** Whether the resource passes every `where` (an empty result is false; anything but one boolean is an error). */
function passes(view: CompiledView, resource: Record<string, unknown>): boolean {
  for (const where of view.where) {
    const values = plainValues(where.evaluate(resource, 0));
    if (values.length === 0) return false;
    if (values.length > 1 || typeof values[0] !== 'boolean') {
      throw new OperationOutcomeError('processing', `where ${JSON.stringify(where.path)} gives ${JSON.stringify(values)} for ${keyOf(resource)}, not one boolean`, { expression: [where.path] });
    }
    if (!values[0]) return false;
  }
  return true;
}

/**
 * The rows one resource yields (none when it is of another type or fails `where`). A resource
 * whose data the fast paths leave to the engine (fast-paths.ts) is evaluated by the engine alone.
 */
export function viewRows(view: CompiledView, resource: Record<string, unknown>): ViewRow[] {
  try {
    return rows(view, resource);
  } catch (err) {
    if (err instanceof IrregularData && view.engine) return rows(view.engine(), resource);
    throw err;
  }
}

function rows(view: CompiledView, resource: Record<string, unknown>): ViewRow[] {
  if (resource.resourceType !== view.resource || !passes(view, resource)) return [];
  // A flat view's one row, without building and joining a row per select.
  if (view.flat) return [view.flat.map((column) => columnValue(column, resource, 0, resource))];
  return rowsOf(view.root, resource, 0, resource);
}

/** A row as an object keyed by column name, in column order. */
export const rowObject = (view: CompiledView, row: ViewRow): Record<string, unknown> => Object.fromEntries(view.columns.map((c, i) => [c.name, row[i]]));
