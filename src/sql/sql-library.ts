/**
 * A SQLQuery or SQLView Library (SQL on FHIR v2, 3.0.0-ballot, library-profiles.fsh) read into
 * what the engine needs: the SQL of the attachment for this engine's dialect, the tables it
 * depends on (label -> canonical of a ViewDefinition or SQLView), and its declared parameters.
 * Every problem is reported at once, each naming its element: 400 for what breaks the profile,
 * 422 when nothing in it can run here (no attachment in this engine's dialect). Pure.
 */
import type { Issue } from '../fhir/operation-outcome';
import { OperationOutcomeError } from '../fhir/outcome-error';
import type { SqlParameter, SqlParameterType } from './engine-types';

/** The code systems of `Library.type`: today's, and the one peers' docs still send. */
const LIBRARY_TYPE_SYSTEMS = ['http://hl7.org/fhir/uv/sql-on-fhir/CodeSystem/LibraryTypesCodes', 'https://sql-on-fhir.org/ig/CodeSystem/LibraryTypesCodes'];
export const ENGINE_DIALECT = 'duckdb';
const PARAMETER_TYPES: readonly SqlParameterType[] = ['string', 'integer', 'decimal', 'boolean', 'date', 'dateTime'];
const LABEL = /^[A-Za-z][A-Za-z0-9_]*$/;
/**
 * Words DuckDB cannot take as a table name in `FROM` (its reserved keywords, and those of its
 * type_function keywords the parser reads as syntax there, such as `join` or `glob`; checked
 * against duckdb_keywords() of the shipped engine): not a label.
 */
const RESERVED = new Set(
  'all analyse analyze and anti any array as asc asof asymmetric at authorization binary both by case cast check collate collation column concurrently constraint create cross default deferrable desc describe distinct do else end except false fetch for foreign freeze from full glob group having ilike in initially inner intersect into is isnull join lambda lateral leading left like limit natural not notnull null offset on only or order outer overlaps pivot pivot_longer pivot_wider placing positional primary qualify references returning right select semi show similar some summarize symmetric table tablesample then to trailing true union unique unpack unpivot using variadic verbose when where window with'.split(' '),
);

export interface SqlDependency {
  /** The table name the SQL uses. */
  label: string;
  /** The canonical URL of a ViewDefinition or SQLView, without its version. */
  url: string;
  version?: string;
}

export interface SqlLibrary {
  kind: 'sql-query' | 'sql-view';
  url?: string;
  name?: string;
  sql: string;
  dependencies: SqlDependency[];
  parameters: Array<{ name: string; type: SqlParameterType }>;
}

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/** `sql-query` or `sql-view` if the Library says it is one (by either code system). */
export function sqlLibraryKind(resource: unknown): SqlLibrary['kind'] | undefined {
  if (!isObject(resource) || resource.resourceType !== 'Library' || !isObject(resource.type)) return undefined;
  for (const coding of list(resource.type.coding)) {
    if (isObject(coding) && LIBRARY_TYPE_SYSTEMS.includes(String(coding.system)) && (coding.code === 'sql-query' || coding.code === 'sql-view')) return coding.code;
  }
  return undefined;
}

/** The dialect of a content type: `application/sql` (none) or `application/sql;dialect=x`; undefined when not SQL. */
function dialectOf(contentType: unknown): string | null | undefined {
  if (typeof contentType !== 'string') return undefined;
  const [type, ...params] = contentType.split(';').map((p) => p.trim());
  if (type.toLowerCase() !== 'application/sql') return undefined;
  const dialect = params.map((p) => /^dialect=(.+)$/i.exec(p)?.[1]).find(Boolean);
  return dialect ? dialect.toLowerCase() : null;
}

/** The SQL of an attachment: `data`, base64 (1..1 in the profile; the sql-text extension is a copy for people, not read). */
function attachmentText(attachment: Json): string | undefined {
  if (typeof attachment.data !== 'string' || !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(attachment.data)) return undefined;
  return Buffer.from(attachment.data, 'base64').toString('utf8');
}

/** Reads a SQLQuery or SQLView; throws an OperationOutcomeError listing every problem. */
export function readSqlLibrary(resource: unknown, at = 'subject'): SqlLibrary {
  const kind = sqlLibraryKind(resource);
  if (!kind || !isObject(resource)) throw OperationOutcomeError.invalid(`${at} is not a SQLQuery or SQLView Library (Library.type sql-query or sql-view)`, at);
  const problems: Issue[] = [];
  const problem = (code: Issue['code'], diagnostics: string, expression: string) => problems.push({ code, diagnostics, expression: [`${at}.${expression}`] });

  // The SQL: this engine's dialect first, else the dialect-free text; never a translation.
  const contents = list(resource.content);
  if (contents.length === 0) problem('required', 'A SQL Library needs content: the SQL, base64 in data', 'content');
  const candidates: Array<{ dialect: string | null; text: string }> = [];
  contents.forEach((content, i) => {
    if (!isObject(content)) return problem('structure', 'content must be an Attachment', `content[${i}]`);
    const dialect = dialectOf(content.contentType);
    if (dialect === undefined) return problem('invalid', `contentType must be application/sql or application/sql;dialect=<dialect>, got ${JSON.stringify(content.contentType)}`, `content[${i}].contentType`);
    const text = attachmentText(content);
    if (text === undefined || text.trim() === '') return problem('required', 'The SQL is missing: data must hold it in base64', `content[${i}].data`);
    candidates.push({ dialect, text });
  });
  const chosen = candidates.find((c) => c.dialect === ENGINE_DIALECT) ?? candidates.find((c) => c.dialect === null);

  const labels = new Set<string>();
  const dependencies: SqlDependency[] = [];
  list(resource.relatedArtifact).forEach((artifact, i) => {
    const where = `relatedArtifact[${i}]`;
    if (!isObject(artifact) || artifact.type !== 'depends-on') return problem('invalid', 'Every relatedArtifact of a SQL Library is a depends-on', `${where}.type`);
    const label = artifact.label;
    if (typeof label !== 'string' || !LABEL.test(label)) problem('invalid', `label must be a table name (a letter, then letters, digits and _), got ${JSON.stringify(label)}`, `${where}.label`);
    else if (RESERVED.has(label.toLowerCase())) problem('invalid', `label ${label} is an SQL reserved word`, `${where}.label`);
    else if (labels.has(label.toLowerCase())) problem('invalid', `label ${label} names two tables`, `${where}.label`);
    if (typeof artifact.resource !== 'string' || !/^\S+$/.test(artifact.resource)) return problem('required', 'resource must be the canonical URL of a ViewDefinition or SQLView', `${where}.resource`);
    if (typeof label !== 'string' || !LABEL.test(label)) return;
    labels.add(label.toLowerCase());
    const [url, version] = artifact.resource.split('|');
    dependencies.push({ label, url: url!, ...(version ? { version } : {}) });
  });

  const names = new Set<string>();
  const parameters: SqlLibrary['parameters'] = [];
  list(resource.parameter).forEach((parameter, i) => {
    const where = `parameter[${i}]`;
    if (kind === 'sql-view') return problem('invalid', 'A SQLView takes no parameters', where);
    if (!isObject(parameter)) return problem('structure', 'parameter must be a ParameterDefinition', where);
    const { name, type, use } = parameter;
    if (typeof name !== 'string' || !LABEL.test(name)) return problem('invalid', `name must be a letter, then letters, digits and _, got ${JSON.stringify(name)}`, `${where}.name`);
    if (names.has(name)) return problem('invalid', `parameter ${name} is declared twice`, `${where}.name`);
    if (!PARAMETER_TYPES.includes(type as SqlParameterType)) return problem('invalid', `type must be one of ${PARAMETER_TYPES.join(', ')}, got ${JSON.stringify(type)}`, `${where}.type`);
    if (use !== 'in') return problem('invalid', `use must be in (query parameters are input), got ${JSON.stringify(use)}`, `${where}.use`);
    names.add(name);
    parameters.push({ name, type: type as SqlParameterType });
  });

  if (problems.length > 0) throw OperationOutcomeError.ofIssues(problems);
  if (!chosen) {
    const offered = [...new Set(candidates.map((c) => c.dialect))].join(', ');
    throw new OperationOutcomeError('processing', `No SQL for this server's engine (${ENGINE_DIALECT}, or application/sql without a dialect); the Library offers ${offered}`, { expression: [`${at}.content`] });
  }
  return {
    kind,
    ...(typeof resource.url === 'string' ? { url: resource.url } : {}),
    ...(typeof resource.name === 'string' ? { name: resource.name } : {}),
    sql: chosen.text,
    dependencies,
    parameters,
  };
}

/** The `Parameters.parameter` value element each declared type takes. */
const VALUE_ELEMENT: Record<SqlParameterType, string> = { string: 'valueString', integer: 'valueInteger', decimal: 'valueDecimal', boolean: 'valueBoolean', date: 'valueDate', dateTime: 'valueDateTime' };
const VALUE_CHECK: Record<SqlParameterType, (v: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  integer: (v) => Number.isSafeInteger(v),
  decimal: (v) => typeof v === 'number' && Number.isFinite(v),
  boolean: (v) => typeof v === 'boolean',
  date: (v) => typeof v === 'string' && /^\d{4}(-\d{2}(-\d{2})?)?$/.test(v),
  dateTime: (v) => typeof v === 'string' && /^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/.test(v),
};

/**
 * The values a request gives the declared parameters (a nested `Parameters`, as CQL $evaluate
 * takes them): each named once, declared, of its declared type, and every declared one given.
 * Any problem is a 400 naming `parameters`.
 */
export function sqlParameterValues(declared: SqlLibrary['parameters'], given: unknown, at = 'parameters'): SqlParameter[] {
  const problems: Issue[] = [];
  const problem = (diagnostics: string, expression = at) => problems.push({ code: 'invalid', diagnostics, expression: [expression] });
  if (given !== undefined && (!isObject(given) || given.resourceType !== 'Parameters')) {
    throw OperationOutcomeError.invalid('parameters must be a Parameters resource', at);
  }
  const byName = new Map(declared.map((d) => [d.name, d]));
  const values = new Map<string, SqlParameter>();
  list(isObject(given) ? given.parameter : undefined).forEach((part, i) => {
    const where = `${at}.parameter[${i}]`;
    if (!isObject(part) || typeof part.name !== 'string') return problem('every parameter needs a name', where);
    const declaration = byName.get(part.name);
    if (!declaration) return problem(`${part.name} is not a parameter of this query (declared: ${declared.map((d) => d.name).join(', ') || 'none'})`, where);
    if (values.has(part.name)) return problem(`${part.name} is given twice`, where);
    const element = VALUE_ELEMENT[declaration.type];
    const valueKeys = Object.keys(part).filter((k) => k.startsWith('value'));
    if (valueKeys.length !== 1 || valueKeys[0] !== element || !VALUE_CHECK[declaration.type](part[element])) {
      return problem(`${part.name} is declared ${declaration.type}: give it as ${element}`, where);
    }
    values.set(part.name, { name: part.name, type: declaration.type, value: part[element] as string | number | boolean });
  });
  for (const d of declared) if (!values.has(d.name)) problem(`parameter ${d.name} (${d.type}) has no value`);
  if (problems.length > 0) throw OperationOutcomeError.ofIssues(problems);
  return [...values.values()];
}
