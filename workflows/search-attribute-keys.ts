/** Custom search attributes every export carries, so operators can find it in the Web UI. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const exportIdKey = defineSearchAttributeKey('BulkflowExportId', SearchAttributeType.KEYWORD);
export const exportLevelKey = defineSearchAttributeKey('BulkflowLevel', SearchAttributeType.KEYWORD);
export const exportGroupKey = defineSearchAttributeKey('BulkflowGroup', SearchAttributeType.KEYWORD);
export const exportOwnerKey = defineSearchAttributeKey('BulkflowOwner', SearchAttributeType.KEYWORD);
export const exportTenantKey = defineSearchAttributeKey('BulkflowTenant', SearchAttributeType.KEYWORD);
export const exportTypesKey = defineSearchAttributeKey('BulkflowResourceTypes', SearchAttributeType.KEYWORD_LIST);
export const exportSinceKey = defineSearchAttributeKey('BulkflowSince', SearchAttributeType.DATETIME);
/** The bulkflow schedule of a scheduled run (on the run's workflow and on its export). */
export const exportScheduleKey = defineSearchAttributeKey('BulkflowScheduleId', SearchAttributeType.KEYWORD);
/** `running` until the export's files are complete, then `completed` (or `failed`, `cancelled`): what per-tenant caps count. */
export const exportStateKey = defineSearchAttributeKey('BulkflowExportState', SearchAttributeType.KEYWORD);
/** Resources in the completed export's output files. */
export const exportResourceCountKey = defineSearchAttributeKey('BulkflowResourceCount', SearchAttributeType.INT);
