import { SearchAttributeType } from '@temporalio/common';
import type { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import {
  exportGroupKey,
  exportIdKey,
  exportLevelKey,
  exportOwnerKey,
  exportResourceCountKey,
  exportScheduleKey,
  exportSinceKey,
  exportStateKey,
  exportTenantKey,
  exportTypesKey,
} from '../../workflows/search-attribute-keys';

export * from '../../workflows/search-attribute-keys';
export const exportSearchAttributeKeys = [
  exportIdKey,
  exportLevelKey,
  exportGroupKey,
  exportOwnerKey,
  exportTenantKey,
  exportTypesKey,
  exportSinceKey,
  exportScheduleKey,
  exportStateKey,
  exportResourceCountKey,
];

const indexedValueType: Record<string, temporal.api.enums.v1.IndexedValueType> = {
  [SearchAttributeType.KEYWORD]: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  [SearchAttributeType.KEYWORD_LIST]: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
  [SearchAttributeType.DATETIME]: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  [SearchAttributeType.INT]: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
};

/** Names used by `temporal operator search-attribute create` and `tcld` for each type. */
const typeName: Record<string, string> = {
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
  [SearchAttributeType.DATETIME]: 'Datetime',
  [SearchAttributeType.INT]: 'Int',
};

/** The namespace lacks attributes bulkflow queries (the tenant cap, the Web UI filters): refuse to start, naming them. */
export class MissingSearchAttributesError extends Error {
  constructor(
    readonly namespace: string,
    readonly missing: string[],
    reason: string,
  ) {
    const keys = exportSearchAttributeKeys.filter((key) => missing.includes(key.name));
    super(
      [
        `Temporal namespace "${namespace}" lacks the search attributes bulkflow needs: ${missing.join(', ')} (${reason}).`,
        'Create them with `bulkflow temporal setup` (same TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE), or:',
        `  temporal operator search-attribute create --namespace ${namespace} ${keys.map((k) => `--name ${k.name} --type ${typeName[k.type]}`).join(' ')}`,
        `  tcld namespace search-attributes add --namespace ${namespace} ${keys.map((k) => `--search-attribute "${k.name}=${typeName[k.type]}"`).join(' ')}`,
      ].join('\n'),
    );
    this.name = 'MissingSearchAttributesError';
  }
}

/** Export attributes the namespace lacks, or holds with another type (`Name (has Text)`). */
async function missingSearchAttributes(connection: Connection, namespace: string): Promise<{ absent: string[]; mistyped: string[] }> {
  const existing = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
  const absent = exportSearchAttributeKeys.filter((key) => existing[key.name] === undefined).map((key) => key.name);
  const mistyped = exportSearchAttributeKeys
    .filter((key) => existing[key.name] !== undefined && existing[key.name] !== indexedValueType[key.type])
    .map((key) => key.name);
  return { absent, mistyped };
}

/**
 * Makes sure the export search attributes exist on `namespace`: registers the missing ones where
 * the operator API allows it (`register`), idempotently, and several processes may do so at
 * once; otherwise throws MissingSearchAttributesError. Returns the names it registered.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string, options: { register?: boolean; timeoutMs?: number } = {}): Promise<string[]> {
  let { absent, mistyped } = await missingSearchAttributes(connection, namespace);
  if (mistyped.length > 0) throw new MissingSearchAttributesError(namespace, mistyped, 'they exist with another type; remove or rename them');
  if (absent.length === 0) return [];
  if (options.register === false) throw new MissingSearchAttributesError(namespace, absent, 'TEMPORAL_REGISTER_SEARCH_ATTRIBUTES=false');
  const registering = absent;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(exportSearchAttributeKeys.filter((key) => absent.includes(key.name)).map((key) => [key.name, indexedValueType[key.type]])),
    });
  } catch (err) {
    // Another process may have registered them a moment ago; anything else (Temporal Cloud refuses the operator API) is final.
    ({ absent } = await missingSearchAttributes(connection, namespace));
    if (absent.length > 0) throw new MissingSearchAttributesError(namespace, absent, `the server refused to register them: ${(err as Error).message}`);
    return [];
  }
  // Registration reaches every frontend after a moment.
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  while ((absent = (await missingSearchAttributes(connection, namespace)).absent).length > 0) {
    if (Date.now() > deadline) throw new MissingSearchAttributesError(namespace, absent, 'registered, but not visible yet');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  // ...and visibility queries accept them once the frontend's cache holds them (SQL visibility: seconds later).
  const query = exportSearchAttributeKeys.map((k) => `${k.name} IS NULL`).join(' AND ');
  for (;;) {
    try {
      await connection.workflowService.countWorkflowExecutions({ namespace, query });
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new MissingSearchAttributesError(namespace, registering, `registered, but queries do not accept them yet: ${(err as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  return registering;
}
