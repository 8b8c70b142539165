import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import { supportedSearchParameters } from './search/parameters';
import { bulkSubmitOperationIds, bulkSubmitOperationUrl } from './bulk-submit-operation-definitions';

export interface CapabilityOptions {
  /** Absolute URL of the FHIR base, e.g. https://bulk.example.org/fhir */
  fhirBaseUrl: string;
  softwareVersion: string;
  /** When the statement was generated (the server's start time). */
  date: string;
  /** Resource types the server stores and can export (with REST interactions and search parameters). */
  resourceTypes?: readonly string[];
  /** Whether the `$export` operations are available (system, Patient, Group). */
  bulkExport?: boolean;
  /** Whether SQL on FHIR's `$sql-run` (and `ViewDefinition/$viewdefinition-run`) is served. */
  viewOperations?: boolean;
  /** Whether `$sql-export` (and `ViewDefinition/$viewdefinition-export`) is served. */
  viewExport?: boolean;
  /** Whether the receiving side is served: `$bulk-submit`, `$bulk-submit-status`, `$import`. */
  bulkSubmit?: boolean;
  /** With SMART Backend Services authorization on: the token endpoint. */
  tokenEndpoint?: string;
  /** Authorization explicitly off on a network address: the software name warns every client. */
  authorizationOff?: boolean;
}

const BULK_DATA_CAPABILITY = 'http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data';
const OPERATION_DEFINITION = 'http://hl7.org/fhir/uv/bulkdata/OperationDefinition';
const SQL_ON_FHIR_OPERATION = 'http://sql-on-fhir.org/OperationDefinition';

/** The R4 CapabilityStatement served at `[base]/metadata`. */
export function buildCapabilityStatement(options: CapabilityOptions): CapabilityStatement {
  // v2 (with STU3's parameters) as `export`; the STU4 ballot's as `export-v4`, as its export.md shows for two versions at one endpoint.
  const exportOperation = (definition: string) => [
    { name: 'export', definition: `${OPERATION_DEFINITION}/${definition}` },
    { name: 'export-v4', definition: `${OPERATION_DEFINITION}/${definition}|4.0.0` },
  ];
  const resources: CapabilityStatementRestResource[] = (options.resourceTypes ?? []).map((type) => ({
    type: type as CapabilityStatementRestResource['type'],
    interaction: (['read', 'create', 'update', 'delete', 'search-type'] as const).map((code) => ({ code })),
    versioning: 'versioned',
    searchParam: supportedSearchParameters(type) as CapabilityStatementRestResource['searchParam'],
  }));
  if (options.bulkExport) {
    for (const [type, definition] of [
      ['Patient', 'patient-export'],
      ['Group', 'group-export'],
    ] as const) {
      let resource = resources.find((r) => r.type === type);
      if (!resource) resources.push((resource = { type }));
      resource.operation = exportOperation(definition);
    }
  }
  if (options.viewOperations) {
    let resource = resources.find((r) => (r.type as string) === 'ViewDefinition');
    if (!resource) resources.push((resource = { type: 'ViewDefinition' as CapabilityStatementRestResource['type'] }));
    resource.operation = [
      { name: 'viewdefinition-run', definition: `${SQL_ON_FHIR_OPERATION}/$viewdefinition-run` },
      ...(options.viewExport ? [{ name: 'viewdefinition-export', definition: `${SQL_ON_FHIR_OPERATION}/$viewdefinition-export` }] : []),
    ];
    // SQLQuery and SQLView Libraries: run by id, or under the names clients shipped first.
    let library = resources.find((r) => r.type === 'Library');
    if (!library) resources.push((library = { type: 'Library' }));
    library.operation = [
      { name: 'sqlquery-run', definition: `${SQL_ON_FHIR_OPERATION}/$sqlquery-run` },
      ...(options.viewExport ? [{ name: 'sqlquery-export', definition: `${SQL_ON_FHIR_OPERATION}/$sqlquery-export` }] : []),
    ];
  }
  // $sql-run and $sql-export take ViewDefinitions and SQLQuery / SQLView subjects alike.
  const systemOperations = [
    ...(options.bulkExport ? exportOperation('export') : []),
    ...(options.bulkSubmit ? bulkSubmitOperationIds.map((id) => ({ name: id, definition: bulkSubmitOperationUrl(id, options.fhirBaseUrl) })) : []),
    ...(options.viewOperations ? [{ name: 'sql-run', definition: `${SQL_ON_FHIR_OPERATION}/$sql-run` }, { name: 'sqlquery-run', definition: `${SQL_ON_FHIR_OPERATION}/$sqlquery-run` }] : []),
    ...(options.viewOperations && options.viewExport
      ? [
          { name: 'sql-export', definition: `${SQL_ON_FHIR_OPERATION}/$sql-export` },
          { name: 'sqlquery-export', definition: `${SQL_ON_FHIR_OPERATION}/$sqlquery-export` },
        ]
      : []),
  ];
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: options.date,
    publisher: 'bulkflow',
    kind: 'instance',
    ...(options.bulkExport ? { instantiates: [BULK_DATA_CAPABILITY] } : {}),
    software: { name: options.authorizationOff ? 'bulkflow (AUTHORIZATION OFF: anyone who reaches this server can read every resource)' : 'bulkflow', version: options.softwareVersion },
    implementation: { description: 'bulkflow FHIR Bulk Data export service', url: options.fhirBaseUrl },
    fhirVersion: '4.0.1',
    format: ['json', 'application/fhir+json'],
    rest: [
      {
        mode: 'server',
        ...(options.tokenEndpoint
          ? {
              security: {
                service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
                extension: [
                  {
                    url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
                    extension: [{ url: 'token', valueUri: options.tokenEndpoint }],
                  },
                ],
              },
            }
          : {}),
        ...(resources.length > 0 ? { interaction: [{ code: 'transaction' }, { code: 'batch' }] } : {}),
        resource: resources,
        ...(systemOperations.length > 0 ? { operation: systemOperations } : {}),
      },
    ],
  };
}
