/**
 * The parameters of `$sql-run` (and of the earlier `$viewdefinition-run` that HFS and Pathling
 * shipped), from a POST `Parameters` body or a GET query, checked: exactly one subject, data
 * inline only with an inline or stored ViewDefinition, a known format, scoping by patient,
 * group and `_since`, a row limit. Anything else is a 400 naming the parameter. Pure.
 */
import { OperationOutcomeError } from '../fhir/outcome-error';
import { parseInstant } from '../fhir/kickoff-parameters';
import { FHIR_ID } from '../fhir/resource-validation';

/** `fhir` (a Parameters of typed rows) is for SQL subjects only. */
export type RowFormat = 'json' | 'ndjson' | 'csv' | 'parquet' | 'fhir';

/** What to run (a ViewDefinition, or a SQLQuery / SQLView Library): given inline, or stored (by id or by canonical `url|version`). */
export type ViewSubject = { resource: Record<string, unknown> } | { id: string; type?: 'ViewDefinition' | 'Library' } | { url: string; version?: string };

export interface ViewRunRequest {
  subject: ViewSubject;
  /** Inline data to run the view over instead of the store's. */
  resources?: Record<string, unknown>[];
  format: RowFormat;
  /** CSV: a header row (default true). */
  header: boolean;
  patientId?: string;
  groupId?: string;
  since?: string;
  limit?: number;
  /** A SQL subject's parameter values (a nested Parameters). */
  parameters?: Record<string, unknown>;
  /** Inline ViewDefinitions and SQLViews a SQL subject's tables may name by canonical. */
  context?: Record<string, unknown>[];
}

const FORMATS: Record<string, RowFormat> = {
  json: 'json',
  'application/json': 'json',
  ndjson: 'ndjson',
  'application/x-ndjson': 'ndjson',
  'application/ndjson': 'ndjson',
  csv: 'csv',
  'text/csv': 'csv',
  parquet: 'parquet',
  'application/vnd.apache.parquet': 'parquet',
  fhir: 'fhir',
  'application/fhir+json': 'fhir',
};

/** One parameter as it came: a value (text) or a resource part. */
export interface RawPart {
  name: string;
  text?: string;
  resource?: Record<string, unknown>;
}

/** The parts of a POST `Parameters` body. */
export function partsFromBody(body: unknown): RawPart[] {
  const parameters = body as { resourceType?: unknown; parameter?: unknown };
  if (!parameters || typeof parameters !== 'object' || parameters.resourceType !== 'Parameters') {
    throw OperationOutcomeError.invalid('The POST body must be a FHIR Parameters resource');
  }
  if (parameters.parameter !== undefined && !Array.isArray(parameters.parameter)) throw OperationOutcomeError.invalid('Parameters.parameter must be an array');
  return ((parameters.parameter ?? []) as Record<string, unknown>[]).map((p, i) => {
    if (!p || typeof p !== 'object' || typeof p.name !== 'string') throw OperationOutcomeError.invalid(`Parameters.parameter[${i}] has no name`);
    if (p.resource !== undefined) {
      if (!p.resource || typeof p.resource !== 'object' || Array.isArray(p.resource)) throw OperationOutcomeError.invalid(`Parameters.parameter[${i}] (${p.name}): resource must be a JSON object`, p.name);
      return { name: p.name, resource: p.resource as Record<string, unknown> };
    }
    const key = Object.keys(p).find((k) => k.startsWith('value'));
    const value = key ? p[key] : undefined;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return { name: p.name, text: String(value) };
    if (value && typeof value === 'object' && typeof (value as { reference?: unknown }).reference === 'string') return { name: p.name, text: (value as { reference: string }).reference };
    throw OperationOutcomeError.invalid(`Parameters.parameter[${i}] (${p.name}) has neither a value[x] nor a resource`, p.name);
  });
}

/** The parts of a GET query (values only: resources cannot travel in a query). */
export function partsFromQuery(query: Record<string, string | string[] | undefined>): RawPart[] {
  return Object.entries(query).flatMap(([name, value]) => (value === undefined ? [] : (Array.isArray(value) ? value : [value]).map((text) => ({ name, text }))));
}

/** The names of the earlier `$viewdefinition-run` and `$sqlquery-run`. */
const ALIASES: Record<string, string> = {
  viewResource: 'subjectResource',
  viewReference: 'subjectReference',
  viewCanonical: 'subjectCanonical',
  queryResource: 'subjectResource',
  queryReference: 'subjectReference',
  queryCanonical: 'subjectCanonical',
};
const KNOWN = new Set(['subjectResource', 'subjectReference', 'subjectCanonical', 'resource', '_format', 'header', 'patient', 'group', '_since', '_limit', 'parameters', 'context']);

/** A `Type/id` reference (relative, or absolute ending so) of the given type. */
function referenceId(text: string, type: string, parameter: string): string {
  const match = new RegExp(`(?:^|/)${type}/([^/]+)$`).exec(text);
  if (!match || !FHIR_ID.test(match[1])) throw OperationOutcomeError.invalid(`${parameter} must be a reference to a ${type} (${type}/id), got ${JSON.stringify(text)}`, parameter);
  return match[1];
}

/** Checks the parameters. `inPath`: the subject named by the URL (`ViewDefinition/{id}/$viewdefinition-run`, `Library/{id}/$sqlquery-run`). */
export function parseViewRunRequest(parts: RawPart[], inPath?: { id: string; type: 'ViewDefinition' | 'Library' }): ViewRunRequest {
  const byName = new Map<string, RawPart[]>();
  for (const part of parts) {
    const name = ALIASES[part.name] ?? part.name;
    if (!KNOWN.has(name)) throw OperationOutcomeError.invalid(`Unknown parameter ${part.name}`, part.name);
    byName.set(name, [...(byName.get(name) ?? []), part]);
  }
  const one = (name: string): RawPart | undefined => {
    const found = byName.get(name) ?? [];
    if (found.length > 1) throw OperationOutcomeError.invalid(`${name} may be given once`, name);
    return found[0];
  };
  const text = (name: string): string | undefined => {
    const part = one(name);
    if (part && part.text === undefined) throw OperationOutcomeError.invalid(`${name} takes a value, not a resource`, name);
    return part?.text;
  };

  const subjects: ViewSubject[] = [];
  const inline = one('subjectResource');
  if (inline) {
    if (!inline.resource) throw OperationOutcomeError.invalid('subjectResource must be a ViewDefinition or a SQLQuery Library', 'subjectResource');
    if (inline.resource.resourceType !== undefined && inline.resource.resourceType !== 'ViewDefinition' && inline.resource.resourceType !== 'Library') {
      throw new OperationOutcomeError('not-supported', `subjectResource is a ${String(inline.resource.resourceType)}; only ViewDefinitions and SQLQuery or SQLView Libraries can be run here`, { expression: ['subjectResource'] });
    }
    subjects.push({ resource: inline.resource });
  }
  const reference = text('subjectReference');
  if (reference !== undefined) {
    const type = /(?:^|\/)Library\/[^/]+$/.test(reference) ? 'Library' : 'ViewDefinition';
    subjects.push({ id: referenceId(reference, type, 'subjectReference'), type });
  }
  const canonical = text('subjectCanonical');
  if (canonical !== undefined) {
    const [url, version] = canonical.split('|');
    if (!url) throw OperationOutcomeError.invalid('subjectCanonical must be a canonical URL (url or url|version)', 'subjectCanonical');
    subjects.push({ url, version: version || undefined });
  }
  if (inPath !== undefined) subjects.push(inPath);
  if (subjects.length !== 1) {
    throw OperationOutcomeError.invalid(
      subjects.length === 0 ? 'Name the ViewDefinition to run: one of subjectResource, subjectReference, subjectCanonical' : 'Give exactly one of subjectResource, subjectReference, subjectCanonical (or the ViewDefinition in the URL)',
      'subjectResource',
    );
  }

  const resourceParts = byName.get('resource') ?? [];
  if (resourceParts.some((p) => !p.resource)) throw OperationOutcomeError.invalid('resource parts must each hold a resource', 'resource');
  const resources = resourceParts.length > 0 ? resourceParts.map((p) => p.resource!) : undefined;

  const formatText = text('_format') ?? 'json';
  const format = FORMATS[formatText.split(';')[0].trim().toLowerCase()];
  if (!format) throw OperationOutcomeError.invalid(`_format ${JSON.stringify(formatText)} is not one of json, ndjson, csv, parquet, fhir`, '_format');

  const headerText = text('header');
  if (headerText !== undefined && headerText !== 'true' && headerText !== 'false') throw OperationOutcomeError.invalid('header must be true or false', 'header');

  const limitText = text('_limit');
  const limit = limitText === undefined ? undefined : Number(limitText);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw OperationOutcomeError.invalid(`_limit must be a positive integer, got ${JSON.stringify(limitText)}`, '_limit');

  const patient = text('patient');
  const group = text('group');
  const sinceText = text('_since');
  if (resources && (patient || group || sinceText)) {
    throw OperationOutcomeError.invalid('patient, group and _since scope the store\'s data; they do not apply to inline resource parts', patient ? 'patient' : group ? 'group' : '_since');
  }
  const parameters = one('parameters');
  if (parameters && !parameters.resource) throw OperationOutcomeError.invalid('parameters must be a Parameters resource', 'parameters');
  const contextParts = byName.get('context') ?? [];
  if (contextParts.some((p) => !p.resource)) throw OperationOutcomeError.invalid('context parts must each hold a ViewDefinition or SQLView', 'context');
  return {
    subject: subjects[0],
    resources,
    ...(parameters ? { parameters: parameters.resource } : {}),
    ...(contextParts.length > 0 ? { context: contextParts.map((p) => p.resource!) } : {}),
    format,
    header: headerText !== 'false',
    patientId: patient === undefined ? undefined : referenceId(patient, 'Patient', 'patient'),
    groupId: group === undefined ? undefined : referenceId(group, 'Group', 'group'),
    since: sinceText === undefined ? undefined : parseInstant(sinceText, '_since'),
    limit,
  };
}
