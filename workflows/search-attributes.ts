import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** `running` until the export's files are complete, then `completed` (or `failed`, `cancelled`): what per-tenant caps count. */
export const exportStateKey = defineSearchAttributeKey('BulkflowExportState', SearchAttributeType.KEYWORD);
/** Resources in the completed export's output files. */
export const exportResourceCountKey = defineSearchAttributeKey('BulkflowResourceCount', SearchAttributeType.INT);
