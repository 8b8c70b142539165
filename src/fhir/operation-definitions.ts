/**
 * The Bulk Data IG v2.0.0 OperationDefinitions of `$export` at the three levels, as bulkflow
 * serves them at `[base]/OperationDefinition/{id}`. Each is the IG's definition (same canonical
 * URL), with the STU3 parameters bulkflow also accepts.
 */
import type { OperationDefinition, OperationDefinitionParameter } from '@medplum/fhirtypes';

const CANONICAL = 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition';

type Level = 'system' | 'patient' | 'group';

function parameters(level: Level): OperationDefinitionParameter[] {
  const input = (name: string, type: string, max: string, documentation: string): OperationDefinitionParameter => ({
    name,
    use: 'in',
    min: 0,
    max,
    type: type as OperationDefinitionParameter['type'],
    documentation,
  });
  return [
    input('_outputFormat', 'string', '1', 'application/fhir+ndjson (also application/ndjson or ndjson); the default.'),
    input('_since', 'instant', '1', 'Only resources changed after this instant; deletions since then are listed under `deleted`.'),
    input('_until', 'instant', '1', 'Only resources changed at or before this instant (STU3 parameter).'),
    input('_type', 'string', '*', 'Comma-delimited resource types to export.'),
    input('_elements', 'string', '*', 'Root elements to keep (Type.element or element); mandatory elements are always kept; resources are tagged SUBSETTED.'),
    ...(level === 'system' ? [] : [input('patient', 'Reference', '*', 'Only these patients (POST only).')]),
    input('includeAssociatedData', 'code', '*', 'LatestProvenanceResources or RelevantProvenanceResources: the Provenance of the exported resources.'),
    input('_typeFilter', 'string', '*', 'FHIR search queries (Type?param=value) per type, OR-ed for one type.'),
    ...(level === 'system' ? [] : [input('organizeOutputBy', 'string', '1', 'Patient: files of per-patient blocks, each headed by a Parameters resource (STU3 parameter).')]),
    input('allowPartialManifests', 'boolean', '1', 'true: manifest pages are served while the export runs (STU3 parameter).'),
    { name: 'return', use: 'out', min: 0, max: '1', type: 'Binary', documentation: 'The status URL in Content-Location (asynchronous).' },
  ];
}

const DEFINITIONS: Record<string, { level: Level; title: string; resource?: 'Patient' | 'Group' }> = {
  export: { level: 'system', title: 'FHIR Bulk Data System Level Export' },
  'patient-export': { level: 'patient', title: 'FHIR Bulk Data Patient Level Export', resource: 'Patient' },
  'group-export': { level: 'group', title: 'FHIR Bulk Data Group Export', resource: 'Group' },
};

export const operationDefinitionIds = Object.keys(DEFINITIONS);

export function operationDefinition(id: string): OperationDefinition | undefined {
  const definition = DEFINITIONS[id];
  if (!definition) return undefined;
  return {
    resourceType: 'OperationDefinition',
    id,
    url: `${CANONICAL}/${id}`,
    version: '2.0.0',
    name: definition.title.replace(/[^A-Za-z]/g, ''),
    title: definition.title,
    status: 'active',
    kind: 'operation',
    code: 'export',
    affectsState: false,
    ...(definition.resource ? { resource: [definition.resource] } : {}),
    system: definition.level === 'system',
    type: definition.level === 'patient',
    instance: definition.level === 'group',
    parameter: parameters(definition.level),
  };
}
