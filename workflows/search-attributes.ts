import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** `running` until the export's files are complete, then `completed`: what per-tenant caps count. */
export const exportStateKey = defineSearchAttributeKey('BulkflowExportState', SearchAttributeType.KEYWORD);
