// Workflow code only: deterministic, bundled by the worker; imports nothing that does I/O.
export { bulkExport, statusQuery, exportFinishedSignal } from './bulk-export';
export { asyncRequest, asyncStatusQuery } from './async-request';
export { scheduledExport, deliverWebhook } from './scheduled-export';
export { viewExport, viewExportStatusQuery } from './view-export';
export { scheduledViewExport } from './scheduled-view-export';
export { bulkSubmission, submissionStatusQuery, submitManifestSignal, closeSubmissionSignal } from './bulk-submission';
