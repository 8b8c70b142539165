/**
 * The kick-off parameters of `$sql-export` (and of the earlier names:
 * `ViewDefinition/$viewdefinition-export` with `view` parts, `$sqlquery-export` with `query`
 * parts): one or more subjects, each with a `name`, one of `subjectResource` /
 * `subjectReference` / `subjectCanonical` (`view*`, `query*`) naming a ViewDefinition or a
 * SQLQuery / SQLView Library, and a SQL subject's `parameters`; then `context` (inline
 * ViewDefinitions and SQLViews the SQL subjects' tables may name), `clientTrackingId`,
 * `_format`, `header`, `patient`, `group`, `_since`. Anything else (`source` included) is a
 * 400 naming it. Pure.
 */
import type { ViewFormat } from '../contracts/view-export';
import { OperationOutcomeError } from '../fhir/outcome-error';
import { parseInstant } from '../fhir/kickoff-parameters';
import { FHIR_ID } from '../fhir/resource-validation';
import type { ViewSubject } from './run-request';

export interface ViewExportRequest {
  subjects: { name?: string; subject: ViewSubject; parameters?: Record<string, unknown> }[];
  /** Inline ViewDefinitions and SQLViews, by canonical, for the SQL subjects' tables. */
  context?: Record<string, unknown>[];
  clientTrackingId?: string;
  format: ViewFormat;
  header: boolean;
  patientIds?: string[];
  groupId?: string;
  since?: string;
}

const FORMATS: Record<string, ViewFormat> = {
  ndjson: 'ndjson',
  'application/x-ndjson': 'ndjson',
  'application/ndjson': 'ndjson',
  csv: 'csv',
  'text/csv': 'csv',
  json: 'json',
  'application/json': 'json',
  parquet: 'parquet',
  'application/vnd.apache.parquet': 'parquet',
};

type Part = Record<string, unknown>;

const valueOf = (part: Part): unknown => {
  const key = Object.keys(part).find((k) => k.startsWith('value'));
  return key === undefined ? undefined : part[key];
};

const textOf = (part: Part, name: string): string => {
  const value = valueOf(part);
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value && typeof value === 'object' && typeof (value as { reference?: unknown }).reference === 'string') return (value as { reference: string }).reference;
  throw OperationOutcomeError.invalid(`${name} needs a value`, name);
};

function referenceId(text: string, type: string, parameter: string): string {
  const match = new RegExp(`(?:^|/)${type}/([^/]+)$`).exec(text);
  if (!match || !FHIR_ID.test(match[1])) throw OperationOutcomeError.invalid(`${parameter} must be a reference to a ${type} (${type}/id), got ${JSON.stringify(text)}`, parameter);
  return match[1];
}

/** One `subject` / `view` / `query` part's nested parts. */
function subjectOf(part: Part, at: string): ViewExportRequest['subjects'][number] {
  if (!Array.isArray(part.part)) throw OperationOutcomeError.invalid(`${at} must have parts: a name and one of subjectResource, subjectReference, subjectCanonical`, at);
  let name: string | undefined;
  let parameters: Record<string, unknown> | undefined;
  const subjects: ViewSubject[] = [];
  for (const inner of part.part as Part[]) {
    const innerName = String(inner?.name);
    switch (innerName) {
      case 'name':
        name = textOf(inner, `${at}.name`);
        break;
      case 'subjectResource':
      case 'viewResource':
      case 'queryResource': {
        const resource = inner.resource as Record<string, unknown> | undefined;
        if (!resource || typeof resource !== 'object') throw OperationOutcomeError.invalid(`${at}.${innerName} must be a ViewDefinition or a SQLQuery Library`, `${at}.${innerName}`);
        if (resource.resourceType !== undefined && resource.resourceType !== 'ViewDefinition' && resource.resourceType !== 'Library') {
          throw new OperationOutcomeError('not-supported', `${at}.${innerName} is a ${String(resource.resourceType)}; only ViewDefinitions and SQLQuery or SQLView Libraries can be exported`, { expression: [`${at}.${innerName}`] });
        }
        subjects.push({ resource });
        break;
      }
      case 'subjectReference':
      case 'viewReference':
      case 'queryReference': {
        const text = textOf(inner, `${at}.${innerName}`);
        const type = /(?:^|\/)Library\/[^/]+$/.test(text) ? 'Library' : 'ViewDefinition';
        subjects.push({ id: referenceId(text, type, `${at}.${innerName}`), type });
        break;
      }
      case 'parameters': {
        const resource = inner.resource as Record<string, unknown> | undefined;
        if (!resource || typeof resource !== 'object' || resource.resourceType !== 'Parameters') throw OperationOutcomeError.invalid(`${at}.parameters must be a Parameters resource`, `${at}.parameters`);
        parameters = resource;
        break;
      }
      case 'subjectCanonical':
      case 'queryCanonical': {
        const [url, version] = textOf(inner, `${at}.${innerName}`).split('|');
        subjects.push({ url, version: version || undefined });
        break;
      }
      default:
        throw OperationOutcomeError.invalid(`Unknown part ${innerName} of ${at}`, `${at}.${innerName}`);
    }
  }
  if (subjects.length !== 1) throw OperationOutcomeError.invalid(`${at} needs exactly one of subjectResource, subjectReference, subjectCanonical`, at);
  return { name, subject: subjects[0], ...(parameters ? { parameters } : {}) };
}

export function parseViewExportRequest(body: unknown): ViewExportRequest {
  const parameters = body as { resourceType?: unknown; parameter?: unknown };
  if (!parameters || typeof parameters !== 'object' || parameters.resourceType !== 'Parameters' || !Array.isArray(parameters.parameter ?? [])) {
    throw OperationOutcomeError.invalid('The POST body of $sql-export must be a FHIR Parameters resource');
  }
  const request: ViewExportRequest = { subjects: [], format: 'ndjson', header: true };
  const seen = new Set<string>();
  const once = (name: string) => {
    if (seen.has(name)) throw OperationOutcomeError.invalid(`${name} may be given once`, name);
    seen.add(name);
  };
  ((parameters.parameter ?? []) as Part[]).forEach((part, i) => {
    const name = typeof part?.name === 'string' ? part.name : undefined;
    const at = `parameter[${i}]`;
    switch (name) {
      case 'subject':
      case 'view':
      case 'query':
        request.subjects.push(subjectOf(part, `subject[${request.subjects.length}]`));
        break;
      case 'context': {
        const resource = part.resource as Record<string, unknown> | undefined;
        if (!resource || typeof resource !== 'object' || (resource.resourceType !== 'ViewDefinition' && resource.resourceType !== 'Library')) {
          throw OperationOutcomeError.invalid('context parts must each hold a ViewDefinition or SQLView', 'context');
        }
        (request.context ??= []).push(resource);
        break;
      }
      case 'clientTrackingId':
        once(name);
        request.clientTrackingId = textOf(part, name);
        break;
      case '_format': {
        once(name);
        const text = textOf(part, name);
        const format = FORMATS[text.toLowerCase()];
        if (!format) throw OperationOutcomeError.invalid(`_format ${JSON.stringify(text)} is not one of ndjson, csv, json, parquet${text === 'fhir' ? ' (fhir output is $export\'s)' : ''}`, '_format');
        request.format = format;
        break;
      }
      case 'header': {
        once(name);
        const text = textOf(part, name);
        if (text !== 'true' && text !== 'false') throw OperationOutcomeError.invalid('header must be true or false', 'header');
        request.header = text === 'true';
        break;
      }
      case 'patient':
        (request.patientIds ??= []).push(referenceId(textOf(part, name), 'Patient', 'patient'));
        break;
      case 'group':
        once(name);
        request.groupId = referenceId(textOf(part, name), 'Group', 'group');
        break;
      case '_since':
        once(name);
        request.since = parseInstant(textOf(part, name), '_since');
        break;
      case 'source':
        throw new OperationOutcomeError('not-supported', 'source is not supported: bulkflow exports its own store', { expression: ['source'] });
      default:
        throw OperationOutcomeError.invalid(`Unknown parameter ${name ?? `(unnamed ${at})`}`, name ?? at);
    }
  });
  if (request.subjects.length === 0) throw OperationOutcomeError.invalid('Name at least one view to export: a subject part with a name and subjectResource, subjectReference or subjectCanonical', 'subject');
  return request;
}
