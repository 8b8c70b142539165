/**
 * The `Parameters` of `$bulk-submit`, `$bulk-submit-status` and `$import` (ping-and-pull), read
 * strictly: every refusal names its parameter. Also read: the spellings clients of earlier drafts
 * still send (`FHIRBaseUrl`; `submissionStatus` codes `complete` and `aborted`; `valueString` or
 * `valueUri` where a URL is due).
 */
import type { ImportMode, ManifestRequest, SubmitterRef } from '../contracts/bulk-submit';
import { OperationOutcomeError } from '../fhir/outcome-error';

type Parameter = Record<string, unknown> & { name: string; part?: Parameter[] };

export interface SubmitRequest {
  submitter: SubmitterRef;
  submissionId: string;
  /** Absent: `in-progress` (the default): more manifests may follow. */
  closeWith?: 'completed' | 'stopped';
  manifest?: ManifestRequest;
}

/** The `import` option that chooses how stored resources are treated. */
export const IMPORT_MODE_URL = 'urn:bulkflow:import:mode';
const STATUS_CODES: Record<string, SubmitRequest['closeWith'] | 'in-progress'> = { 'in-progress': 'in-progress', completed: 'completed', complete: 'completed', stopped: 'stopped', aborted: 'stopped' };
const FORMATS = new Set(['application/fhir+ndjson', 'application/ndjson', 'ndjson']);
/** Headers bulkflow sets itself (or that would change how bytes are framed): a provider may not choose them. */
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'range', 'accept-encoding', 'te', 'upgrade', 'keep-alive', 'proxy-authorization', 'expect']);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const invalid = (message: string, parameter: string) => OperationOutcomeError.invalid(message, parameter);

function parametersOf(body: unknown, operation: string): Parameter[] {
  const resource = body as { resourceType?: unknown; parameter?: unknown };
  if (!resource || typeof resource !== 'object' || resource.resourceType !== 'Parameters') throw OperationOutcomeError.invalid(`The body of ${operation} must be a FHIR Parameters resource`);
  const list = resource.parameter ?? [];
  if (!Array.isArray(list)) throw OperationOutcomeError.invalid('Parameters.parameter must be an array');
  for (const [i, p] of list.entries()) {
    if (!p || typeof p !== 'object' || typeof (p as Parameter).name !== 'string') throw OperationOutcomeError.invalid(`Parameters.parameter[${i}] has no name`);
  }
  return list as Parameter[];
}

function valueOf(p: Parameter): [string, unknown] | undefined {
  const key = Object.keys(p).find((k) => k.startsWith('value'));
  return key ? [key, p[key]] : undefined;
}

function text(p: Parameter, types: string[] = ['valueString']): string {
  const value = valueOf(p);
  if (!value || !types.includes(value[0]) || typeof value[1] !== 'string' || value[1] === '') throw invalid(`${p.name} needs a non-empty ${types.join(' or ')}`, p.name);
  return value[1];
}

function httpUrl(p: Parameter): string {
  const value = text(p, ['valueUrl', 'valueUri', 'valueString', 'valueCanonical']);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(`${p.name} must be an absolute URL`, p.name);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid(`${p.name} must be an http(s) URL`, p.name);
  return url.href;
}

function once(params: Parameter[], names: string[]): Parameter | undefined {
  const found = params.filter((p) => names.includes(p.name));
  if (found.length > 1) throw invalid(`${names[0]} may be given once`, names[0]);
  return found[0];
}

function parts(p: Parameter): Map<string, Parameter> {
  if (!Array.isArray(p.part)) throw invalid(`${p.name} needs parts`, p.name);
  return new Map(p.part.map((part) => [String(part.name), part]));
}

function submitterOf(params: Parameter[]): SubmitterRef {
  const p = once(params, ['submitter']);
  if (!p) throw invalid('submitter is required', 'submitter');
  const identifier = p.valueIdentifier as { system?: unknown; value?: unknown } | undefined;
  if (!identifier || typeof identifier.system !== 'string' || typeof identifier.value !== 'string' || !identifier.system || !identifier.value) {
    throw invalid('submitter needs a valueIdentifier with a system and a value', 'submitter');
  }
  return { system: identifier.system, value: identifier.value };
}

function submissionIdOf(params: Parameter[]): string {
  const p = once(params, ['submissionId']);
  if (!p) throw invalid('submissionId is required', 'submissionId');
  const id = text(p, ['valueString', 'valueId', 'valueCode']);
  if (id.length > 256) throw invalid('submissionId is longer than 256 characters', 'submissionId');
  return id;
}

/** `$bulk-submit`'s Parameters. */
export function parseSubmitParameters(body: unknown): SubmitRequest {
  const params = parametersOf(body, '$bulk-submit');
  const known = new Set(['submitter', 'submissionId', 'submissionStatus', 'manifestUrl', 'replacesManifestUrl', 'outputFormat', 'fhirBaseUrl', 'FHIRBaseUrl', 'fileRequestHeader', 'oauthMetadataUrl', 'fileEncryptionKey', 'metadata', 'import']);
  for (const p of params) if (!known.has(p.name)) throw invalid(`$bulk-submit has no parameter ${p.name}`, p.name);
  if (params.some((p) => p.name === 'fileEncryptionKey')) {
    throw new OperationOutcomeError('not-supported', 'fileEncryptionKey: bulkflow does not decrypt JWE files; submit the files unencrypted over TLS (with fileRequestHeader or oauthMetadataUrl for access)', { expression: ['fileEncryptionKey'] });
  }
  const request: SubmitRequest = { submitter: submitterOf(params), submissionId: submissionIdOf(params) };

  const statusParam = once(params, ['submissionStatus']);
  if (statusParam) {
    const coding = statusParam.valueCoding as { code?: unknown } | undefined;
    const code = coding ? coding.code : (statusParam.valueCode ?? statusParam.valueString);
    const status = typeof code === 'string' ? STATUS_CODES[code] : undefined;
    if (!status) throw invalid(`submissionStatus must be in-progress, completed or stopped (got ${JSON.stringify(code)})`, 'submissionStatus');
    if (status !== 'in-progress') request.closeWith = status;
  }

  const manifestParam = once(params, ['manifestUrl']);
  const manifestOnly = ['replacesManifestUrl', 'outputFormat', 'fileRequestHeader', 'oauthMetadataUrl', 'import'];
  if (!manifestParam) {
    const stray = params.find((p) => manifestOnly.includes(p.name));
    if (stray) throw invalid(`${stray.name} goes with a manifestUrl`, stray.name);
    if (!statusParam) throw invalid('$bulk-submit needs a manifestUrl, a submissionStatus, or both', 'manifestUrl');
    return request;
  }
  const baseParam = once(params, ['fhirBaseUrl', 'FHIRBaseUrl']);
  if (!baseParam) throw invalid('fhirBaseUrl is required with a manifestUrl', 'fhirBaseUrl');
  const formatParam = once(params, ['outputFormat']);
  if (formatParam) {
    const format = text(formatParam).split(';')[0].trim().toLowerCase();
    if (!FORMATS.has(format)) throw invalid(`outputFormat ${text(formatParam)} is not supported: bulkflow loads application/fhir+ndjson`, 'outputFormat');
  }
  const oauth = params.filter((p) => p.name === 'oauthMetadataUrl');
  if (oauth.length > 1) throw invalid('bulkflow gets its token from one authorization server: give one oauthMetadataUrl', 'oauthMetadataUrl');
  const replaces = once(params, ['replacesManifestUrl']);
  request.manifest = {
    source: 'manifest',
    url: httpUrl(manifestParam),
    fhirBaseUrl: httpUrl(baseParam),
    replacesManifestUrl: replaces ? httpUrl(replaces) : undefined,
    fileRequestHeaders: params.filter((p) => p.name === 'fileRequestHeader').map(headerOf),
    oauthMetadataUrl: oauth[0] ? httpUrl(oauth[0]) : undefined,
    mode: importMode(params),
    metadata: params.filter((p) => p.name === 'metadata').map(metadataOf),
  };
  if (request.manifest.replacesManifestUrl === request.manifest.url) throw invalid('replacesManifestUrl names the manifest itself', 'replacesManifestUrl');
  return request;
}

function headerOf(p: Parameter): [string, string] {
  const part = parts(p);
  const name = part.get('headerName') ?? part.get('name');
  const value = part.get('headerValue') ?? part.get('value');
  if (!name || !value) throw invalid('fileRequestHeader needs the parts headerName and headerValue', 'fileRequestHeader');
  const headerName = text(name);
  const headerValue = text(value);
  if (!TOKEN.test(headerName)) throw invalid(`fileRequestHeader: ${JSON.stringify(headerName)} is not a header name`, 'fileRequestHeader');
  if (RESERVED_HEADERS.has(headerName.toLowerCase())) throw invalid(`fileRequestHeader: bulkflow sets ${headerName} itself`, 'fileRequestHeader');
  if (/[\r\n\0]/.test(headerValue)) throw invalid('fileRequestHeader: a header value may not hold line breaks', 'fileRequestHeader');
  return [headerName, headerValue];
}

function metadataOf(p: Parameter): [string, string] {
  const part = parts(p);
  const url = part.get('parameterUrl');
  const value = part.get('parameterValue');
  if (!url || !value) throw invalid('metadata needs the parts parameterUrl and parameterValue', 'metadata');
  const given = valueOf(value);
  if (!given) throw invalid('metadata.parameterValue needs a value[x]', 'metadata');
  return [httpUrlOrUrn(url), typeof given[1] === 'string' ? given[1] : JSON.stringify(given[1])];
}

function httpUrlOrUrn(p: Parameter): string {
  const value = text(p, ['valueUri', 'valueUrl', 'valueString', 'valueCanonical']);
  if (!/^(https?:\/\/|urn:)/.test(value)) throw invalid(`${p.name} must be an absolute URL`, p.name);
  return value;
}

function importMode(params: Parameter[]): ImportMode {
  let mode: ImportMode = 'replace';
  for (const p of params.filter((q) => q.name === 'import')) {
    const part = parts(p);
    const url = part.get('parameterUrl');
    const value = part.get('parameterValue');
    if (!url || !value) throw invalid('import needs the parts parameterUrl and parameterValue', 'import');
    const key = httpUrlOrUrn(url);
    if (key !== IMPORT_MODE_URL) throw new OperationOutcomeError('not-supported', `import option ${key} is not supported (bulkflow knows ${IMPORT_MODE_URL}: replace or merge)`, { expression: ['import'] });
    const chosen = text(value, ['valueCode', 'valueString']);
    if (chosen !== 'replace' && chosen !== 'merge') throw invalid(`import ${IMPORT_MODE_URL} must be replace or merge (got ${chosen})`, 'import');
    mode = chosen;
  }
  return mode;
}

/** `$bulk-submit-status`'s Parameters (a POST body, or the query of a GET: `submitter=system|value`). */
export function parseStatusParameters(body: unknown): { submitter: SubmitterRef; submissionId: string } {
  const params = parametersOf(body, '$bulk-submit-status');
  for (const p of params) if (!['submitter', 'submissionId', '_outputFormat'].includes(p.name)) throw invalid(`$bulk-submit-status has no parameter ${p.name}`, p.name);
  const format = once(params, ['_outputFormat']);
  if (format && !FORMATS.has(text(format).split(';')[0].trim().toLowerCase())) throw invalid('_outputFormat: bulkflow answers with application/fhir+ndjson', '_outputFormat');
  return { submitter: submitterOf(params), submissionId: submissionIdOf(params) };
}

/** The query of a `GET $bulk-submit-status?submitter=system|value&submissionId=...` as Parameters. */
export function statusQueryAsParameters(query: Record<string, string | string[] | undefined>): unknown {
  const parameter: Parameter[] = [];
  for (const [name, raw] of Object.entries(query)) {
    for (const value of Array.isArray(raw) ? raw : [raw ?? '']) {
      if (name === 'submitter') {
        const bar = value.lastIndexOf('|');
        parameter.push({ name, valueIdentifier: bar > 0 ? { system: value.slice(0, bar), value: value.slice(bar + 1) } : {} });
      } else parameter.push({ name, valueString: value });
    }
  }
  return { resourceType: 'Parameters', parameter };
}

/** `$import` ping-and-pull: `exportUrl`, `exportType` (`dynamic`, the default: run the export; `static`: a manifest). */
export function parseImportParameters(body: unknown): { exportUrl: string; exportType: 'dynamic' | 'static'; mode: ImportMode } {
  const params = parametersOf(body, '$import');
  for (const p of params) if (!['exportUrl', 'exportType', 'import'].includes(p.name)) throw invalid(`$import has no parameter ${p.name}`, p.name);
  const url = once(params, ['exportUrl']);
  if (!url) throw invalid('exportUrl is required', 'exportUrl');
  const typeParam = once(params, ['exportType']);
  const exportType = typeParam ? text(typeParam, ['valueCode', 'valueString']) : 'dynamic';
  if (exportType !== 'dynamic' && exportType !== 'static') throw invalid(`exportType must be dynamic or static (got ${exportType})`, 'exportType');
  return { exportUrl: httpUrl(url), exportType, mode: importMode(params) };
}
