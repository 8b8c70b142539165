/**
 * A SQL on FHIR v2 ViewDefinition checked and compiled once: every problem found in one pass and
 * reported together (structure 400, FHIRPath that does not parse or `unionAll` branches whose
 * columns differ 422, each naming its path), every expression compiled once for all resources.
 * Pure.
 */
import { OperationOutcomeError } from '../fhir/outcome-error';
import type { Issue } from '../fhir/operation-outcome';
import { isKnownResourceType } from '../fhir/resource-validation';
import { compileExpression, substituteConstants, typedSteps, type Evaluate } from './fhirpath-engine';

export interface ViewColumn {
  name: string;
  path: string;
  /** `column.type` (a FHIR primitive type name), when given. */
  type?: string;
  collection: boolean;
  /** `column.tag` (e.g. `ansi/type`), as given. */
  tags: { name: string; value: string }[];
}

/** One select node: what it iterates over, its own columns, then nested selects, then unionAll branches. */
export interface CompiledSelect {
  iterate?: { kind: 'forEach' | 'forEachOrNull' | 'repeat'; paths: string[]; evaluate: Evaluate[] };
  columns: (ViewColumn & { evaluate: Evaluate })[];
  selects: CompiledSelect[];
  unionAll: CompiledSelect[];
  /** Every column this node produces, in row order. */
  width: ViewColumn[];
}

export interface CompiledView {
  name?: string;
  resource: string;
  /** Every column of a row, in order. */
  columns: ViewColumn[];
  where: { path: string; evaluate: Evaluate }[];
  root: CompiledSelect;
  /** A view without forEach, forEachOrNull, repeat or unionAll gives one row per resource: its columns in row order. */
  flat?: CompiledSelect['columns'];
  /** The same view on the engine alone, for a resource whose data the fast paths leave to it (compiled when first needed). */
  engine?: () => CompiledView;
}

/** Every column of a select tree that never iterates or branches, in row order; undefined otherwise. */
function flatColumns(select: CompiledSelect): CompiledSelect['columns'] | undefined {
  if (select.iterate || select.unionAll.length > 0) return undefined;
  const columns = [...select.columns];
  for (const nested of select.selects) {
    const inner = flatColumns(nested);
    if (!inner) return undefined;
    columns.push(...inner);
  }
  return columns;
}

/**
 * The type of the nodes a `forEach` or `forEachOrNull` reaches, when the iteration and all it
 * holds (columns, nested selects and unionAll branches, at any depth) are member chains the
 * fast paths evaluate on plain JSON (fast-paths.ts); undefined leaves the select to the engine,
 * which hands typed nodes to what is inside. All or nothing: an expression the fast paths cannot
 * take needs the engine's typed nodes, so one such expression keeps the whole select on it.
 */
function plainIterationType(raw: Record<string, unknown>, kind: string | undefined, baseType: string | undefined): string | undefined {
  if (!baseType || (kind !== 'forEach' && kind !== 'forEachOrNull') || typeof raw[kind] !== 'string') return undefined;
  const parsed = typedSteps(raw[kind] as string, baseType);
  if (!parsed || parsed.steps.some((step) => step.kind !== 'member' && step.kind !== 'first')) return undefined;
  return plainSelect(raw, parsed.type) ? parsed.type : undefined;
}

function plainSelect(raw: Record<string, unknown>, type: string): boolean {
  const columns = raw.column === undefined ? [] : raw.column;
  if (!Array.isArray(columns) || !columns.every((c) => isObject(c) && typeof c.path === 'string' && typedSteps(c.path, type) !== undefined)) return false;
  const nested = [raw.select ?? [], raw.unionAll ?? []];
  if (!nested.every(Array.isArray)) return false;
  return (nested as unknown[][]).flat().every((n) => {
    if (!isObject(n) || n.repeat !== undefined) return false;
    const kind = (['forEach', 'forEachOrNull'] as const).find((k) => n[k] !== undefined);
    return kind ? plainIterationType(n, kind, type) !== undefined : plainSelect(n, type);
  });
}

const COLUMN_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
const CONSTANT_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** FHIRPath literal of a constant's value[x] (undefined: not a value type a constant may have). */
function constantLiteral(key: string, value: unknown): string | undefined {
  const type = key.slice('value'.length);
  const quoted = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  switch (type) {
    case 'Boolean':
      return typeof value === 'boolean' ? String(value) : undefined;
    case 'Integer':
    case 'PositiveInt':
    case 'UnsignedInt':
    case 'Decimal':
      return typeof value === 'number' && Number.isFinite(value) ? String(value) : undefined;
    case 'Integer64':
      return typeof value === 'string' && /^-?\d+$/.test(value) ? `${value}L` : undefined;
    case 'Date':
      return typeof value === 'string' && /^\d{4}(-\d{2}(-\d{2})?)?$/.test(value) ? `@${value}` : undefined;
    case 'DateTime':
    case 'Instant':
      if (typeof value !== 'string' || !/^\d{4}(-\d{2}(-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?)?)?$/.test(value)) return undefined;
      return value.includes('T') ? `@${value}` : `@${value}T`;
    case 'Time':
      return typeof value === 'string' && /^\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?$/.test(value) ? `@T${value}` : undefined;
    case 'String':
    case 'Code':
    case 'Id':
    case 'Uri':
    case 'Url':
    case 'Canonical':
    case 'Oid':
    case 'Uuid':
    case 'Markdown':
    case 'Base64Binary':
      return typeof value === 'string' ? quoted(value) : undefined;
    default:
      return undefined;
  }
}

class Checker {
  readonly issues: Issue[] = [];
  readonly constants = new Map<string, string>();

  constructor(readonly fastPaths: boolean) {}

  structure(diagnostics: string, at: string): void {
    this.issues.push({ severity: 'error', code: 'structure', diagnostics, expression: [at] });
  }

  processing(diagnostics: string, at: string): void {
    this.issues.push({ severity: 'error', code: 'processing', diagnostics, expression: [at] });
  }

  /** Compiles a FHIRPath expression of the view, or records why it cannot be. */
  expression(path: unknown, at: string, keepTypes: boolean, baseType?: string): Evaluate | undefined {
    if (typeof path !== 'string' || path.trim() === '') {
      this.structure(`${at} must be a FHIRPath expression (a non-empty string)`, at);
      return undefined;
    }
    const { expression, unknown } = substituteConstants(path, this.constants);
    for (const name of unknown) this.processing(`${at} uses %${name}, which is not a constant of this view`, at);
    try {
      return compileExpression(expression, keepTypes, this.fastPaths ? baseType : undefined);
    } catch (err) {
      this.processing(`${at} is not valid FHIRPath (${JSON.stringify(path)}): ${(err as Error).message.split('\n')[0]}`, at);
      return undefined;
    }
  }

  constantsOf(raw: unknown): void {
    if (raw === undefined) return;
    if (!Array.isArray(raw)) return this.structure('constant must be an array', 'constant');
    raw.forEach((c, i) => {
      const at = `constant[${i}]`;
      if (!isObject(c)) return this.structure(`${at} must be an object`, at);
      if (typeof c.name !== 'string' || !CONSTANT_NAME.test(c.name)) return this.structure(`${at}.name must be a name (letters, digits, _; starting with a letter)`, `${at}.name`);
      const values = Object.keys(c).filter((k) => k.startsWith('value'));
      if (values.length !== 1) return this.structure(`${at} (${c.name}) must have exactly one value[x], has ${values.length}`, at);
      const literal = constantLiteral(values[0], c[values[0]]);
      if (literal === undefined) return this.structure(`${at}.${values[0]} is not a value a constant may have`, `${at}.${values[0]}`);
      if (this.constants.has(c.name)) return this.structure(`${at}: the constant ${c.name} is defined twice`, `${at}.name`);
      this.constants.set(c.name, literal);
    });
  }

  column(raw: unknown, at: string, baseType: string | undefined): (ViewColumn & { evaluate: Evaluate }) | undefined {
    if (!isObject(raw)) {
      this.structure(`${at} must be an object`, at);
      return undefined;
    }
    const name = raw.name;
    if (typeof name !== 'string' || !COLUMN_NAME.test(name)) this.structure(`${at}.name must be a column name (letters, digits, _; starting with a letter)`, `${at}.name`);
    if (raw.collection !== undefined && typeof raw.collection !== 'boolean') this.structure(`${at}.collection must be true or false`, `${at}.collection`);
    if (raw.type !== undefined && typeof raw.type !== 'string') this.structure(`${at}.type must be a type name`, `${at}.type`);
    const tags: ViewColumn['tags'] = [];
    if (raw.tag !== undefined) {
      if (!Array.isArray(raw.tag)) this.structure(`${at}.tag must be an array`, `${at}.tag`);
      else
        raw.tag.forEach((t, i) => {
          if (isObject(t) && typeof t.name === 'string' && typeof t.value === 'string') tags.push({ name: t.name, value: t.value });
          else this.structure(`${at}.tag[${i}] must have a name and a value`, `${at}.tag[${i}]`);
        });
    }
    const evaluate = this.expression(raw.path, `${at}.path`, false, baseType);
    if (typeof name !== 'string' || !evaluate) return undefined;
    return { name, path: raw.path as string, type: raw.type as string | undefined, collection: raw.collection === true, tags, evaluate };
  }

  /** `baseType`: the type of the nodes the select's columns read, while known (the resource, outside iterations). */
  select(raw: unknown, at: string, baseType: string | undefined): CompiledSelect {
    const node: CompiledSelect = { columns: [], selects: [], unionAll: [], width: [] };
    if (!isObject(raw)) {
      this.structure(`${at} must be an object`, at);
      return node;
    }
    const kinds = (['forEach', 'forEachOrNull', 'repeat'] as const).filter((k) => raw[k] !== undefined);
    if (kinds.length > 1) this.structure(`${at} may have only one of forEach, forEachOrNull and repeat; has ${kinds.join(', ')}`, at);
    const kind = kinds[0];
    if (kind === 'repeat') {
      const paths = raw.repeat;
      if (!Array.isArray(paths) || paths.length === 0) this.structure(`${at}.repeat must be a non-empty array of FHIRPath expressions`, `${at}.repeat`);
      else {
        const evaluate = paths.map((p, i) => this.expression(p, `${at}.repeat[${i}]`, true));
        if (evaluate.every(Boolean)) node.iterate = { kind, paths: paths as string[], evaluate: evaluate as Evaluate[] };
      }
    }
    // What the select's columns read: the resource's type outside iterations, the iterated type where the fast paths take all of it.
    const plainType = this.fastPaths ? plainIterationType(raw, kind, baseType) : undefined;
    const innerType = kind ? plainType : baseType;
    if (kind && kind !== 'repeat') {
      const evaluate = this.expression(raw[kind], `${at}.${kind}`, plainType === undefined, plainType && baseType);
      if (evaluate) node.iterate = { kind, paths: [raw[kind] as string], evaluate: [evaluate] };
    }
    if (raw.column !== undefined) {
      if (!Array.isArray(raw.column)) this.structure(`${at}.column must be an array`, `${at}.column`);
      else raw.column.forEach((c, i) => {
        const column = this.column(c, `${at}.column[${i}]`, innerType);
        if (column) node.columns.push(column);
      });
    }
    for (const key of ['select', 'unionAll'] as const) {
      if (raw[key] === undefined) continue;
      if (!Array.isArray(raw[key]) || (key === 'unionAll' && raw[key].length === 0)) {
        this.structure(`${at}.${key} must be a${key === 'unionAll' ? ' non-empty' : 'n'} array of selects`, `${at}.${key}`);
        continue;
      }
      // The view's own `select` is the root: its selects are named `select[i]`, not `.select[i]`.
      (raw[key] as unknown[]).forEach((s, i) => node[key === 'select' ? 'selects' : 'unionAll'].push(this.select(s, `${at ? `${at}.` : ''}${key}[${i}]`, innerType)));
    }
    if (node.unionAll.length > 0) {
      const names = (s: CompiledSelect) => s.width.map((c) => c.name).join(', ');
      const first = names(node.unionAll[0]);
      node.unionAll.forEach((branch, i) => {
        if (names(branch) !== first) this.processing(`${at}.unionAll[${i}] has the columns (${names(branch)}), but unionAll[0] has (${first}): every branch needs the same columns in the same order`, `${at}.unionAll[${i}]`);
      });
    }
    node.width = [...node.columns, ...node.selects.flatMap((s) => s.width), ...(node.unionAll[0]?.width ?? [])];
    return node;
  }
}

/**
 * Checks and compiles a ViewDefinition; throws one OperationOutcomeError listing every problem.
 * `fastPaths: false` evaluates every expression with the FHIRPath engine alone (the reference
 * the fast paths are tested against).
 */
export function compileView(raw: unknown, options: { fastPaths?: boolean } = {}): CompiledView {
  const check = new Checker(options.fastPaths ?? true);
  if (!isObject(raw)) throw OperationOutcomeError.ofIssues([{ severity: 'error', code: 'structure', diagnostics: 'A ViewDefinition must be a JSON object' }]);
  if (raw.resourceType !== undefined && raw.resourceType !== 'ViewDefinition') check.structure(`resourceType must be ViewDefinition, not ${JSON.stringify(raw.resourceType)}`, 'resourceType');
  if (typeof raw.resource !== 'string' || raw.resource === '') check.structure('resource must name the FHIR resource type the view reads', 'resource');
  else if (!isKnownResourceType(raw.resource)) check.structure(`resource ${JSON.stringify(raw.resource)} is not an R4 resource type`, 'resource');
  check.constantsOf(raw.constant);
  if (!Array.isArray(raw.select) || raw.select.length === 0) check.structure('select must be a non-empty array', 'select');
  const root = check.select({ select: Array.isArray(raw.select) ? raw.select : [] }, '', typeof raw.resource === 'string' && isKnownResourceType(raw.resource) ? raw.resource : undefined);
  const where: CompiledView['where'] = [];
  if (raw.where !== undefined) {
    if (!Array.isArray(raw.where)) check.structure('where must be an array', 'where');
    else
      raw.where.forEach((w, i) => {
        if (!isObject(w)) return check.structure(`where[${i}] must be an object with a path`, `where[${i}]`);
        const evaluate = check.expression(w.path, `where[${i}].path`, false);
        if (evaluate) where.push({ path: w.path as string, evaluate });
      });
  }
  const seen = new Set<string>();
  for (const column of root.width) {
    if (seen.has(column.name)) check.structure(`The column name ${column.name} is used twice; every column of a view needs its own name`, column.name);
    seen.add(column.name);
  }
  if (check.issues.length > 0) {
    // Structural problems come first: they decide the status (400, else 422).
    const ordered = [...check.issues.filter((i) => i.code === 'structure'), ...check.issues.filter((i) => i.code !== 'structure')];
    throw OperationOutcomeError.ofIssues(ordered);
  }
  let engine: CompiledView | undefined;
  return {
    name: typeof raw.name === 'string' ? raw.name : undefined,
    resource: raw.resource as string,
    columns: root.width,
    where,
    root,
    flat: flatColumns(root),
    engine: check.fastPaths ? () => (engine ??= compileView(raw, { fastPaths: false })) : undefined,
  };
}
