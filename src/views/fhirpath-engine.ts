/**
 * FHIRPath for ViewDefinitions: HL7's `fhirpath` engine with the R4 model (so `ofType` on choice
 * elements and typed comparisons work), plus the functions SQL on FHIR requires of it:
 * `getResourceKey()`, `getReferenceKey([type])`, and `lowBoundary()` / `highBoundary()` on
 * dates, date-times and times as the spec's examples have them (keeping the time zone bound).
 * Expressions are compiled once; constants are substituted as FHIRPath literals when compiled.
 * Loaded with `require`: the package's ESM and CommonJS copies do not mix. Pure.
 */
import type { Model, UserInvocationTable } from 'fhirpath';
import { compileFastPath, parseTyped, type Step } from './fast-paths';
import { referenceParts } from './references';
const fhirpath = require('fhirpath') as typeof import('fhirpath');
const r4 = require('fhirpath/fhir-context/r4') as Model;

/**
 * A compiled expression: applied to a resource or to a node an earlier expression returned.
 * `plain`: its values are plain JSON already (a fast path), with no engine types to resolve;
 * a fast path's `one` gives a lone value without a list (fast-paths.ts).
 */
export type Evaluate = ((node: unknown, rowIndex: number) => unknown[]) & { plain?: boolean; one?: (node: unknown) => unknown };

/** The data behind a node the engine returns (a ResourceNode keeps its type for later expressions). */
const dataOf = (node: unknown): unknown => (node && typeof node === 'object' && 'data' in node && (node as { constructor: { name: string } }).constructor.name === 'ResourceNode' ? (node as { data: unknown }).data : node);


/** The type a `getReferenceKey(Type)` argument names (the engine hands it over as a type specifier or as text). */
const typeName = (argument: unknown): string | undefined => {
  const value = Array.isArray(argument) ? argument[0] : argument;
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && 'name' in value) return String((value as { name: string }).name);
  return undefined;
};

const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/;
const DATE_TIME = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;
const TIME = /^(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?$/;

const daysIn = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();
const pad = (n: number | string, width = 2) => String(n).padStart(width, '0');

/**
 * The earliest or latest instant a partial date, date-time or time can stand for. Dates stay
 * dates; a date-time without a zone takes the widest zone (+14:00 low, -12:00 high); times get
 * milliseconds. Undefined for anything else (numbers are left to the engine).
 */
function boundary(value: string, high: boolean, dateTime: boolean): string | undefined {
  let m = DATE.exec(value);
  if (m && dateTime) {
    // A date-time given to the day or less: its first or last instant, in the widest zone.
    const day = boundary(value, high, false)!;
    return `${day}T${high ? '23:59:59.999-12:00' : '00:00:00.000+14:00'}`;
  }
  if (m && !value.includes('T')) {
    const year = Number(m[1]);
    const month = m[2] ? Number(m[2]) : high ? 12 : 1;
    const day = m[3] ? Number(m[3]) : high ? daysIn(year, month) : 1;
    return `${m[1]}-${pad(month)}-${pad(day)}`;
  }
  m = DATE_TIME.exec(value);
  if (m && value.includes('T')) {
    const [, year, month, day, hour, minute, second, fraction, zone] = m;
    const ms = fraction ? fraction.padEnd(3, '0').slice(0, 3) : high ? '999' : '000';
    return `${year}-${month}-${day}T${hour}:${minute ?? (high ? '59' : '00')}:${second ?? (high ? '59' : '00')}.${ms}${zone ?? (high ? '-12:00' : '+14:00')}`;
  }
  m = TIME.exec(value);
  if (m) {
    const [, hour, minute, second, fraction] = m;
    return `${hour}:${minute ?? (high ? '59' : '00')}:${second ?? (high ? '59' : '00')}.${fraction ? fraction.padEnd(3, '0').slice(0, 3) : high ? '999' : '000'}`;
  }
  return undefined;
}

/** The type a node has in the model, when the engine knows it (`FHIR.date`, `System.Time`, ...). */
const typeOf = (node: unknown): string | undefined => {
  try {
    return fhirpath.types([node])[0];
  } catch {
    return undefined;
  }
};

const decimalOf = (data: unknown): { value: number; places: number } | undefined =>
  data && typeof data === 'object' && typeof (data as { value?: unknown }).value === 'number' && typeof (data as { decimalPlaces?: unknown }).decimalPlaces === 'number'
    ? { value: (data as { value: number }).value, places: (data as { decimalPlaces: number }).decimalPlaces }
    : undefined;

const temporal = /(^|\.)(date|dateTime|instant|time|Date|DateTime|Time)$/;

const boundaryFunction = (high: boolean) => ({
  fn: (inputs: unknown[]) =>
    inputs.flatMap((node): unknown[] => {
      const data = dataOf(node);
      const type = typeOf(node) ?? '';
      if (typeof data === 'string' && temporal.test(type)) {
        const bound = boundary(data, high, /(dateTime|instant|DateTime)$/.test(type));
        return bound === undefined ? [] : [bound];
      }
      // Decimals (the engine's FP_Decimal, or a number): half a unit of the last digit either
      // side. The precision is the number's as parsed: JSON.parse reads `1.0` as 1.
      const decimal = typeof data === 'number' ? { value: data, places: String(data).split('.')[1]?.length ?? 0 } : decimalOf(data);
      if (decimal) {
        const half = 0.5 * 10 ** -decimal.places;
        return [Number((high ? decimal.value + half : decimal.value - half).toFixed(decimal.places + 1))];
      }
      return [];
    }),
  arity: { 0: [] },
  internalStructures: true, // nodes, so their model type is known
});

const userInvocationTable: UserInvocationTable = {
  getResourceKey: {
    fn: (inputs: unknown[]) =>
      inputs.flatMap((node) => {
        const data = dataOf(node) as { resourceType?: unknown; id?: unknown } | undefined;
        return data && typeof data.resourceType === 'string' && typeof data.id === 'string' ? [data.id] : [];
      }),
    arity: { 0: [] },
    internalStructures: true,
  },
  getReferenceKey: {
    fn: (inputs: unknown[], type?: unknown) =>
      inputs.flatMap((node) => {
        const data = dataOf(node) as { reference?: unknown } | undefined;
        const parts = data && typeof data.reference === 'string' ? referenceParts(data.reference) : undefined;
        const wanted = type === undefined ? undefined : typeName(type);
        return parts && (wanted === undefined || wanted === parts.type) ? [parts.id] : [];
      }),
    arity: { 0: [], 1: ['TypeSpecifier'] },
    internalStructures: true,
  },
  lowBoundary: boundaryFunction(false),
  highBoundary: boundaryFunction(true),
};

/** Variables the engine itself provides, which a view's constants cannot stand for. */
const ENGINE_VARIABLES = new Set(['rowIndex', 'resource', 'rootResource', 'context', 'ucum', 'sct', 'loinc']);

/**
 * Replaces `%name` outside string literals by the constant's FHIRPath literal. Unknown names
 * (not a constant, not an engine variable) are returned for the caller to report.
 */
export function substituteConstants(expression: string, constants: Map<string, string>): { expression: string; unknown: string[] } {
  const unknown: string[] = [];
  let out = '';
  for (let i = 0; i < expression.length; ) {
    const c = expression[i];
    if (c === "'" || c === '`') {
      // A string literal or delimited identifier: copied as written, escapes included.
      let j = i + 1;
      while (j < expression.length && expression[j] !== c) j += expression[j] === '\\' ? 2 : 1;
      out += expression.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const variable = c === '%' ? /^%([A-Za-z_][A-Za-z0-9_]*)/.exec(expression.slice(i)) : null;
    if (variable) {
      const name = variable[1];
      const literal = constants.get(name);
      if (literal !== undefined) out += `(${literal})`;
      else {
        if (!ENGINE_VARIABLES.has(name)) unknown.push(name);
        out += variable[0];
      }
      i += variable[0].length;
      continue;
    }
    out += c;
    i++;
  }
  return { expression: out, unknown };
}

/**
 * Compiles an expression (throws the engine's parse error). `keepTypes`: results stay nodes, for
 * expressions applied to them. `baseType`: the type of the nodes it is applied to, when known
 * (the view's resource at the top level): then the common simple paths skip the engine.
 */
export function compileExpression(expression: string, keepTypes: boolean, baseType?: string): Evaluate {
  const compiled = fhirpath.compile(expression, r4, { resolveInternalTypes: !keepTypes, userInvocationTable });
  const fast = keepTypes ? undefined : compileFastPath(expression, baseType, r4);
  if (fast) return Object.assign(fast, { plain: true });
  return (node, rowIndex) => compiled(node as never, { rowIndex }) as unknown[];
}

/** The member steps of an expression in the fast paths' subset, read from `baseType` nodes with the R4 model, and the type they end on; undefined outside the subset. */
export const typedSteps = (expression: string, baseType: string): { steps: Step[]; type: string } | undefined => parseTyped(expression, baseType, r4);

/** Plain JSON values out of engine results (typed quantities, dates and nodes to their data). */
export const plainValues = (values: unknown[]): unknown[] => fhirpath.resolveInternalTypes(values.map(dataOf)) as unknown[];
