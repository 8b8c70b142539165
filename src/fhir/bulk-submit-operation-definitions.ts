/**
 * The OperationDefinitions of the receiving side, as bulkflow serves them at
 * `[base]/OperationDefinition/{id}`: `$bulk-submit` and `$bulk-submit-status` (the Bulk Data STU4
 * ballot's, same canonical URLs, with what bulkflow accepts of each parameter) and `$import`
 * (ping-and-pull), which no IG defines, so its canonical is the server's own.
 */
import type { OperationDefinition, OperationDefinitionParameter } from '@medplum/fhirtypes';
import { IMPORT_MODE_URL } from '../bulk-submit/submit-parameters';

const CANONICAL = 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition';

type Part = [name: string, type: string | undefined, min: number, max: string, documentation: string, parts?: Part[]];

const parameter = ([name, type, min, max, documentation, parts]: Part): OperationDefinitionParameter => ({
  name,
  use: 'in',
  min,
  max,
  ...(type ? { type: type as OperationDefinitionParameter['type'] } : {}),
  documentation,
  ...(parts ? { part: parts.map(parameter) } : {}),
});

const submitter: Part = ['submitter', 'Identifier', 1, '1', 'The data provider: system and value as configured for the tenant (BULK_SUBMITTERS_FILE).'];
const submissionId: Part = ['submissionId', 'string', 1, '1', 'The submission, unique per submitter.'];
const nameValue = (name: string, documentation: string): Part => [name, undefined, 0, '*', documentation, [['parameterUrl', 'uri', 1, '1', 'What the value is.'], ['parameterValue', 'string', 1, '1', 'The value.']]];
const importMode = nameValue('import', `${IMPORT_MODE_URL}: replace (the default: a file's resource replaces the stored one) or merge (a stored resource is kept; the file's becomes a new version only if it differs).`);

const DEFINITIONS: Record<string, { title: string; code: string; version?: string; ownCanonical?: boolean; parameters: Part[] }> = {
  'bulk-submit': {
    title: 'Bulk Submit',
    code: 'bulk-submit',
    version: '1.0.0',
    parameters: [
      submitter,
      submissionId,
      ['submissionStatus', 'Coding', 0, '1', 'in-progress (the default), completed or stopped (http://hl7.org/fhir/event-status); complete and aborted are read as completed and stopped.'],
      ['manifestUrl', 'url', 0, '1', 'A Bulk Data manifest (v2 or STU4) to load; on the tenant\'s allow list.'],
      ['replacesManifestUrl', 'url', 0, '1', 'A manifest of this submission whose resources the new one replaces: those it no longer carries are removed.'],
      ['outputFormat', 'string', 0, '1', 'application/fhir+ndjson (the only format loaded).'],
      ['fhirBaseUrl', 'url', 0, '1', 'The provider\'s FHIR base (also read as FHIRBaseUrl).'],
      ['fileRequestHeader', undefined, 0, '*', 'Headers sent with every file request (not Authorization\'s framing headers).', [['headerName', 'string', 1, '1', 'Header name.'], ['headerValue', 'string', 1, '1', 'Header value.']]],
      ['oauthMetadataUrl', 'url', 0, '*', 'SMART configuration of the provider: bulkflow gets its own token there with the key configured for the submitter.'],
      ['fileEncryptionKey', undefined, 0, '1', 'Refused: bulkflow does not decrypt JWE files.'],
      nameValue('metadata', 'Kept with the manifest and shown in its status.'),
      importMode,
    ],
  },
  'bulk-submit-status': {
    title: 'Bulk Submit Status',
    code: 'bulk-submit-status',
    version: '1.0.0',
    parameters: [submitter, submissionId],
  },
  import: {
    title: 'Bulk Import (ping and pull)',
    code: 'import',
    ownCanonical: true,
    parameters: [
      ['exportUrl', 'url', 1, '1', 'dynamic: the provider\'s $export kick-off URL, which bulkflow calls and polls; static: a manifest URL.'],
      ['exportType', 'code', 0, '1', 'dynamic (the default) or static.'],
      importMode,
    ],
  },
};

export const bulkSubmitOperationIds = Object.keys(DEFINITIONS);

/** The canonical URL of a definition; `$import`'s is under the serving base. */
export function bulkSubmitOperationUrl(id: string, fhirBaseUrl: string): string {
  return DEFINITIONS[id]?.ownCanonical ? `${fhirBaseUrl}/OperationDefinition/${id}` : `${CANONICAL}/${id}`;
}

export function bulkSubmitOperationDefinition(id: string, fhirBaseUrl: string): OperationDefinition | undefined {
  const definition = DEFINITIONS[id];
  if (!definition) return undefined;
  return {
    resourceType: 'OperationDefinition',
    id,
    url: bulkSubmitOperationUrl(id, fhirBaseUrl),
    ...(definition.version ? { version: definition.version } : {}),
    name: definition.title.replace(/[^A-Za-z]/g, ''),
    title: definition.title,
    status: 'active',
    kind: 'operation',
    code: definition.code,
    affectsState: true,
    system: true,
    type: false,
    instance: false,
    parameter: [
      ...definition.parameters.map(parameter),
      { name: 'return', use: 'out', min: 0, max: '1', type: 'OperationOutcome', documentation: 'Acknowledgement; progress at the status URL.' },
    ],
  };
}
