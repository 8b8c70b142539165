/**
 * SQL on FHIR v2's `$sql-run` and `$sql-export` (3.0.0-ballot operations) as bulkflow serves
 * them at `[base]/OperationDefinition/{id}`: the spec's canonical URLs, the inputs bulkflow
 * takes (ViewDefinition and SQLQuery / SQLView subjects, their parameters and context), and the
 * earlier names it answers too (`$sqlquery-run`, `$sqlquery-export`, `$viewdefinition-*`).
 */
import type { OperationDefinition, OperationDefinitionParameter } from '@medplum/fhirtypes';

const CANONICAL = 'http://sql-on-fhir.org/OperationDefinition';

type Parameter = OperationDefinitionParameter;
const input = (name: string, type: string, max: string, documentation: string, part?: Parameter[]): Parameter => ({
  name,
  use: 'in',
  min: 0,
  max,
  ...(part ? { part } : { type: type as Parameter['type'] }),
  documentation,
});

const subjectInputs = (prefix = 'subject'): Parameter[] => [
  input(`${prefix}Resource`, 'Resource', '1', 'The subject inline: a ViewDefinition, or a SQLQuery or SQLView Library (one of the three subject inputs).'),
  input(`${prefix}Reference`, 'Reference', '1', 'A stored subject: ViewDefinition/{id} or Library/{id}.'),
  input(`${prefix}Canonical`, 'canonical', '1', 'A stored subject by canonical URL (url or url|version).'),
  input('parameters', 'Parameters', '1', "A SQL subject's parameter values, by the names its Library declares (string, integer, decimal, boolean, date, dateTime); bound by the engine."),
];
const scopeInputs: Parameter[] = [
  input('context', 'Resource', '*', "Inline ViewDefinitions and SQLViews, matched to a SQL subject's tables by canonical URL before the store is searched."),
  input('header', 'boolean', '1', 'CSV: a header row (default true).'),
  input('patient', 'Reference', '*', 'Only the resources of these patients feed the views (before any SQL runs).'),
  input('group', 'Reference', '1', "Only the resources of this Group's members feed the views."),
  input('_since', 'instant', '1', 'Only resources changed after this instant feed the views.'),
];

const DEFINITIONS: Record<string, Omit<OperationDefinition, 'resourceType' | 'id' | 'status' | 'kind'>> = {
  'sql-run': {
    url: `${CANONICAL}/$sql-run`,
    name: 'SQLRun',
    title: 'Run a ViewDefinition or a SQL query synchronously',
    code: 'sql-run',
    affectsState: false,
    system: true,
    type: false,
    instance: false,
    parameter: [
      ...subjectInputs(),
      input('resource', 'Resource', '*', 'Resources to run a ViewDefinition subject over instead of the store (not with a SQL subject).'),
      input('_format', 'code', '1', 'json (default), ndjson, csv, parquet, or fhir (a Parameters of typed rows; SQL subjects only).'),
      ...scopeInputs,
      input('_limit', 'integer', '1', "At most this many rows (after any LIMIT in the SQL); up to SQL_RUN_MAX_ROWS without it."),
      { name: 'return', use: 'out', min: 1, max: '1', type: 'Binary', documentation: 'The rows in the format asked for; Parameters for fhir.' },
    ],
  },
  'sql-export': {
    url: `${CANONICAL}/$sql-export`,
    name: 'SQLExport',
    title: 'Export ViewDefinitions and SQL queries asynchronously',
    code: 'sql-export',
    affectsState: false,
    system: true,
    type: false,
    instance: false,
    parameter: [
      input('subject', '', '*', 'One output: a name and one subject (the $sqlquery-export name calls it query, with query* inputs).', [input('name', 'string', '1', 'The output name.'), ...subjectInputs()]),
      input('clientTrackingId', 'string', '1', 'Echoed in the status and the manifest.'),
      input('_format', 'code', '1', 'ndjson (default), csv, json or parquet.'),
      ...scopeInputs,
      { name: 'return', use: 'out', min: 0, max: '1', type: 'Parameters', documentation: 'Asynchronous: the status URL in Content-Location; when done, 303 to the manifest.' },
    ],
  },
};

export const sqlOperationDefinitionIds = Object.keys(DEFINITIONS);

export function sqlOperationDefinition(id: string): OperationDefinition | undefined {
  const definition = DEFINITIONS[id];
  return definition && { resourceType: 'OperationDefinition', id, status: 'active', kind: 'operation', ...definition };
}
