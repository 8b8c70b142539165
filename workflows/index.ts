// Workflow code only: deterministic, bundled by the worker; imports nothing that does I/O.
export { bulkExport, statusQuery } from './bulk-export';
export { asyncRequest, asyncStatusQuery } from './async-request';
