/**
 * Kick-off parameters of `$export` (Bulk Data IG v2.0.0 and STU3) and `$export-v4` (the STU4
 * ballot: POST only, a repeated parameter per value, `includeAssociatedData` a Coding), from a
 * GET query or a POST Parameters body, checked into one request. Pure: no I/O.
 */
import { OperationOutcomeError } from './outcome-error';
import type { ElementsSelection, TypeFilters } from '../contracts/bulk-export';
import { parseElements } from './elements';
import type { Issue } from './operation-outcome';
import { checkTypeFilter, SearchQueryError, splitTypeFilterValues } from './search/type-filter';
import { patientLevelTypes, REFERENCED_TYPES } from './patient-compartment';
import { r4ResourceTypes } from './definitions';
import { isKnownResourceType } from './resource-validation';

export type Handling = 'strict' | 'lenient';

export interface KickoffRequest {
  types?: string[];
  /** Patient ids from the `patient` parameter (Patient and Group levels). */
  patients?: string[];
  since?: string;
  until?: string;
  /** `_elements`: what to keep of each resource (undefined: whole resources). */
  elements?: ElementsSelection;
  /** `_typeFilter`: search queries per type, OR-ed (a type without one is exported whole). */
  typeFilters?: TypeFilters;
  /** `organizeOutputBy=Patient`: files of per-patient blocks. */
  organizeOutputBy?: 'Patient';
  /** `allowPartialManifests=true`: a paged manifest, served page by page while the export runs. */
  allowPartialManifests?: boolean;
  /** `includeAssociatedData`: the Provenance to add for the exported resources. */
  associatedProvenance?: 'relevant' | 'latest';
  /** Parameters ignored under lenient handling, to report in the manifest `error`. */
  lenientIssues: Issue[];
}

/** Every value of every parameter, as strings, in the order given. */
export type RawParameters = Map<string, string[]>;

/**
 * `v2`: repeated parameters and comma-delimited values are one list (v2.0.0 and STU3). `stu4`:
 * each value is one item; STU4 removed comma-delimited values, so a comma where one item is
 * expected is refused rather than read two ways.
 */
export type KickoffDialect = 'v2' | 'stu4';

/** The code system of `includeAssociatedData` (a Coding in STU4). */
export const INCLUDE_ASSOCIATED_DATA_SYSTEM = 'http://hl7.org/fhir/uv/bulkdata/CodeSystem/include-associated-data';

const NDJSON_FORMATS = new Set(['application/fhir+ndjson', 'application/ndjson', 'ndjson']);
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** Parses a FHIR instant; a `+` offset that arrived unencoded (as a space) is read as `+`. */
export function parseInstant(value: string, parameter: string): string {
  const repaired = value.replace(/ (\d{2}:\d{2})$/, '+$1');
  if (!INSTANT.test(repaired) || Number.isNaN(Date.parse(repaired))) {
    throw OperationOutcomeError.invalid(
      `${parameter} must be a FHIR instant such as 2024-01-31T12:00:00Z or 2024-01-31T12:00:00+01:00, got ${JSON.stringify(value)}`,
      parameter,
    );
  }
  return new Date(repaired).toISOString();
}

/** `Prefer: respond-async, handling=lenient` → handling; refuses a request without respond-async. */
export function parsePrefer(header: string | undefined): Handling {
  const tokens = (header ?? '').split(/[,;]/).map((t) => t.trim().toLowerCase()).filter(Boolean);
  if (!tokens.includes('respond-async')) {
    throw new OperationOutcomeError('invalid', 'The Prefer header must include respond-async for $export', { expression: ['Prefer'] });
  }
  return tokens.includes('handling=lenient') ? 'lenient' : 'strict';
}

/** Accept must allow application/fhir+json (the only kick-off response format the IG defines). */
export function checkAccept(header: string | undefined): void {
  const types = (header ?? '').split(',').map((t) => t.split(';')[0].trim().toLowerCase());
  if (!types.includes('application/fhir+json')) {
    throw new OperationOutcomeError('invalid', `The Accept header must be application/fhir+json for $export, got ${JSON.stringify(header ?? '')}`, {
      expression: ['Accept'],
    });
  }
}

/** The values of a list parameter: under v2 repeats and comma lists joined, as the IG says; under STU4 one item per value. */
function listValues(name: string, values: string[], dialect: KickoffDialect): string[] {
  if (dialect === 'v2') return values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  const joined = values.find((v) => v.includes(','));
  if (joined !== undefined) {
    throw OperationOutcomeError.invalid(`${name} holds one value per parameter in $export-v4 (STU4 has no comma-delimited lists): repeat ${name} for each of ${JSON.stringify(joined)}`, name);
  }
  return values.map((v) => v.trim()).filter(Boolean);
}

function single(params: RawParameters, name: string): string | undefined {
  const values = params.get(name);
  if (!values || values.length === 0) return undefined;
  if (values.length > 1) throw OperationOutcomeError.invalid(`${name} may be given only once`, name);
  return values[0];
}

export function parseKickoffParameters(params: RawParameters, handling: Handling, level: 'system' | 'patient' | 'group', dialect: KickoffDialect = 'v2'): KickoffRequest {
  const lenientIssues: Issue[] = [];
  const commaList = (name: string) => listValues(name, params.get(name) ?? [], dialect);
  const refuseOrIgnore = (name: string, diagnostics: string) => {
    if (handling === 'strict') {
      throw new OperationOutcomeError('not-supported', `${diagnostics} (send Prefer: handling=lenient to have it ignored)`, { expression: [name] });
    }
    lenientIssues.push({ severity: 'warning', code: 'not-supported', diagnostics: `${diagnostics}; ignored`, expression: [name] });
  };

  for (const name of params.keys()) {
    if (['_type', '_since', '_until', '_outputFormat', '_elements', '_typeFilter', 'includeAssociatedData', 'organizeOutputBy', 'allowPartialManifests'].includes(name)) continue;
    if (name === 'patient') {
      if (level === 'system') throw OperationOutcomeError.invalid('The patient parameter is not allowed on a system-level export', 'patient');
    } else {
      refuseOrIgnore(name, `Unknown $export parameter ${name}`);
    }
  }

  const format = single(params, '_outputFormat');
  if (format !== undefined && !NDJSON_FORMATS.has(format)) {
    throw new OperationOutcomeError('not-supported', `_outputFormat ${JSON.stringify(format)} is not supported; use application/fhir+ndjson`, {
      expression: ['_outputFormat'],
    });
  }

  let types: string[] | undefined;
  if (params.has('_type')) {
    types = [...new Set(commaList('_type'))];
    const unknown = types.filter((t) => !isKnownResourceType(t));
    if (unknown.length > 0) throw OperationOutcomeError.invalid(`_type names unknown resource types: ${unknown.join(', ')}`, '_type');
    if (types.length === 0) throw OperationOutcomeError.invalid('_type is empty', '_type');
    if (level !== 'system') {
      const exportable = new Set(patientLevelTypes());
      const outside = types.filter((t) => !exportable.has(t));
      if (outside.length > 0) {
        refuseOrIgnore(
          '_type',
          `${outside.join(', ')} ${outside.length === 1 ? 'is' : 'are'} neither in the Patient compartment nor a type it references (${REFERENCED_TYPES.join(', ')}), so a ${level}-level export has none`,
        );
        types = types.filter((t) => exportable.has(t));
        if (types.length === 0) throw OperationOutcomeError.invalid('_type names no type a Patient- or Group-level export holds', '_type');
      }
    }
  }

  let patients: string[] | undefined;
  if (params.has('patient')) {
    patients = [...new Set(commaList('patient'))].map((reference) => {
      const match = /^(?:.*\/)?Patient\/([A-Za-z0-9\-.]{1,64})$/.exec(reference);
      if (!match) throw OperationOutcomeError.invalid(`patient must be a reference to a Patient (Patient/<id>), got ${JSON.stringify(reference)}`, 'patient');
      return match[1];
    });
  }

  let elements: ElementsSelection | undefined;
  if (params.has('_elements')) {
    const exportable = types ?? (level === 'system' ? [...r4ResourceTypes()] : patientLevelTypes());
    const parsed = parseElements(commaList('_elements'), exportable);
    for (const problem of parsed.problems) refuseOrIgnore('_elements', `_elements value ${JSON.stringify(problem.value)}: ${problem.reason}`);
    const { all, byType } = parsed.selection;
    if (all.length > 0 || Object.keys(byType).length > 0) elements = parsed.selection;
  }

  let typeFilters: TypeFilters | undefined;
  if (params.has('_typeFilter')) {
    const exportable = new Set(patientLevelTypes());
    const filters = params.get('_typeFilter')!;
    for (const text of dialect === 'v2' ? splitTypeFilterValues(filters) : filters.map((f) => f.trim()).filter(Boolean)) {
      try {
        const { type, query } = checkTypeFilter(text);
        if (types && !types.includes(type)) throw new SearchQueryError(`${type} is not among the exported types (_type)`);
        if (level !== 'system' && !exportable.has(type)) throw new SearchQueryError(`${type} is not exported at the ${level} level`);
        ((typeFilters ??= {})[type] ??= []).push(query);
      } catch (err) {
        if (!(err instanceof SearchQueryError)) throw err;
        refuseOrIgnore('_typeFilter', `_typeFilter ${JSON.stringify(text)}: ${err.message}`);
      }
    }
  }

  // Several values: the least restrictive wins (the IG's rule for conflicts).
  let associatedProvenance: KickoffRequest['associatedProvenance'];
  for (const value of commaList('includeAssociatedData')) {
    if (value === 'RelevantProvenanceResources') associatedProvenance = 'relevant';
    else if (value === 'LatestProvenanceResources') associatedProvenance ??= 'latest';
    else refuseOrIgnore('includeAssociatedData', `includeAssociatedData ${JSON.stringify(value)} is not supported (LatestProvenanceResources and RelevantProvenanceResources are)`);
  }

  let organizeOutputBy: KickoffRequest['organizeOutputBy'];
  const organizeBy = single(params, 'organizeOutputBy');
  if (organizeBy !== undefined) {
    if (organizeBy !== 'Patient') refuseOrIgnore('organizeOutputBy', `organizeOutputBy=${organizeBy} is not supported (Patient is)`);
    else if (level === 'system') refuseOrIgnore('organizeOutputBy', 'organizeOutputBy=Patient is supported for Patient- and Group-level exports');
    else organizeOutputBy = 'Patient';
  }

  const partial = single(params, 'allowPartialManifests');
  if (partial !== undefined && partial !== 'true' && partial !== 'false') {
    throw OperationOutcomeError.invalid(`allowPartialManifests must be true or false, got ${JSON.stringify(partial)}`, 'allowPartialManifests');
  }
  const allowPartialManifests = partial === 'true' || undefined;

  const sinceRaw = single(params, '_since');
  const untilRaw = single(params, '_until');
  const since = sinceRaw === undefined ? undefined : parseInstant(sinceRaw, '_since');
  const until = untilRaw === undefined ? undefined : parseInstant(untilRaw, '_until');
  if (since && until && Date.parse(until) < Date.parse(since)) {
    throw OperationOutcomeError.invalid(`_until (${untilRaw}) is before _since (${sinceRaw})`, '_until');
  }
  return { types, patients, since, until, elements, typeFilters, associatedProvenance, organizeOutputBy, allowPartialManifests, lenientIssues };
}

interface ParametersResource {
  resourceType?: unknown;
  parameter?: Array<Record<string, unknown>>;
}

/** A POST body (FHIR Parameters) as raw parameters: one string per value[x]. */
export function parametersFromBody(body: unknown): RawParameters {
  const resource = body as ParametersResource;
  if (!resource || typeof resource !== 'object' || resource.resourceType !== 'Parameters') {
    throw OperationOutcomeError.invalid('The POST body of $export must be a FHIR Parameters resource');
  }
  if (resource.parameter !== undefined && !Array.isArray(resource.parameter)) throw OperationOutcomeError.invalid('Parameters.parameter must be an array');
  const params: RawParameters = new Map();
  for (const [i, parameter] of (resource.parameter ?? []).entries()) {
    if (!parameter || typeof parameter !== 'object' || Array.isArray(parameter)) throw OperationOutcomeError.invalid(`Parameters.parameter[${i}] must be an object`);
    const name = parameter.name;
    if (typeof name !== 'string') throw OperationOutcomeError.invalid(`Parameters.parameter[${i}] has no name`);
    const valueKey = Object.keys(parameter).find((k) => k.startsWith('value'));
    const value = valueKey ? parameter[valueKey] : undefined;
    let text: string | undefined;
    if (typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') text = String(value);
    else if (value && typeof value === 'object' && typeof (value as { reference?: unknown }).reference === 'string') {
      text = (value as { reference: string }).reference;
    } else if (valueKey === 'valueCoding' && value && typeof value === 'object' && typeof (value as { code?: unknown }).code === 'string') {
      // includeAssociatedData is a Coding in STU4; a code of another system is kept whole, so it is refused as unsupported.
      const { system, code } = value as { system?: unknown; code: string };
      text = system === undefined || system === INCLUDE_ASSOCIATED_DATA_SYSTEM ? code : `${String(system)}|${code}`;
    }
    if (text === undefined) throw OperationOutcomeError.invalid(`Parameters.parameter[${i}] (${name}) has no usable value[x]`, name);
    params.set(name, [...(params.get(name) ?? []), text]);
  }
  return params;
}

/** Koa's parsed query as raw parameters. */
export function parametersFromQuery(query: Record<string, string | string[] | undefined>): RawParameters {
  const params: RawParameters = new Map();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) continue;
    params.set(name, Array.isArray(value) ? value : [value]);
  }
  return params;
}
