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
} from '../../workflows/search-attributes';

export * from '../../workflows/search-attributes';
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

/** Registers the missing export search attributes on `namespace`; a no-op when all exist. */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = exportSearchAttributeKeys.filter((key) => !known.has(key.name));
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((key) => [key.name, indexedValueType[key.type]])),
  });
  return missing.map((key) => key.name);
}
