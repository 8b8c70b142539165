/**
 * bulkflow's Prometheus metrics (prom-client), one registry per process: the API's (requests by
 * route and status with latency, exports started by kind, level and tenant) and the worker's
 * (activity runs and durations by activity and outcome, resources and bytes exported, exports
 * finished by kind, level, tenant and outcome). Status
 * polls and their 429s are the requests of the status routes, by status.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ApiMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  exportsStarted: Counter<'kind' | 'level' | 'tenant'>;
}

export interface WorkerMetrics {
  registry: Registry;
  activityRuns: Counter<'activity' | 'outcome'>;
  activityDuration: Histogram<'activity' | 'outcome'>;
  resourcesExported: Counter<'kind'>;
  bytesExported: Counter<'kind'>;
  exportsFinished: Counter<'kind' | 'level' | 'tenant' | 'outcome'>;
  lakeRuns: Counter<'tenant' | 'schedule' | 'outcome'>;
  lakeRows: Counter<'tenant' | 'schedule'>;
  lakeBytes: Counter<'tenant' | 'schedule'>;
}

/** A registry with the process's own metrics (CPU, memory, event loop lag) on it. */
export function processRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'bulkflow_' });
  return registry;
}

export function apiMetrics(registry: Registry = new Registry()): ApiMetrics {
  return {
    registry,
    httpRequests: new Counter({ name: 'bulkflow_http_requests_total', help: 'HTTP requests answered, by method, route pattern and status', labelNames: ['method', 'route', 'status'], registers: [registry] }),
    httpDuration: new Histogram({
      name: 'bulkflow_http_request_duration_seconds',
      help: 'HTTP request latency, by method and route pattern',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    exportsStarted: new Counter({ name: 'bulkflow_exports_started_total', help: 'Exports accepted (202), by kind (bulk, view), level and tenant', labelNames: ['kind', 'level', 'tenant'], registers: [registry] }),
  };
}

export function workerMetrics(registry: Registry = new Registry()): WorkerMetrics {
  return {
    registry,
    activityRuns: new Counter({ name: 'bulkflow_activity_runs_total', help: 'Activity attempts, by activity and outcome (completed, failed)', labelNames: ['activity', 'outcome'], registers: [registry] }),
    activityDuration: new Histogram({
      name: 'bulkflow_activity_duration_seconds',
      help: 'Activity attempt duration (a partition activity: one partition), by activity and outcome',
      labelNames: ['activity', 'outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
      registers: [registry],
    }),
    resourcesExported: new Counter({ name: 'bulkflow_resources_exported_total', help: 'Resources (bulk) or rows (view) written into finished part files', labelNames: ['kind'], registers: [registry] }),
    bytesExported: new Counter({ name: 'bulkflow_bytes_exported_total', help: 'Bytes of finished part files', labelNames: ['kind'], registers: [registry] }),
    exportsFinished: new Counter({
      name: 'bulkflow_exports_finished_total',
      help: 'Exports that ended, by kind (bulk, view), level, tenant and outcome (completed, failed, cancelled), counted by the worker that ran their last step',
      labelNames: ['kind', 'level', 'tenant', 'outcome'],
      registers: [registry],
    }),
    lakeRuns: new Counter({ name: 'bulkflow_lake_runs_total', help: 'Runs of lake schedules (recurring view exports) that ended, by tenant, schedule and outcome', labelNames: ['tenant', 'schedule', 'outcome'], registers: [registry] }),
    lakeRows: new Counter({ name: 'bulkflow_lake_rows_total', help: 'Rows the completed runs of lake schedules added to their tables, by tenant and schedule', labelNames: ['tenant', 'schedule'], registers: [registry] }),
    lakeBytes: new Counter({ name: 'bulkflow_lake_bytes_total', help: 'Bytes the completed runs of lake schedules added to their tables, by tenant and schedule', labelNames: ['tenant', 'schedule'], registers: [registry] }),
  };
}

export interface ImportMetrics {
  registry: Registry;
  resourcesRead: Counter;
  filesRead: Counter;
}

/** `bulkflow import`'s, served while it runs when METRICS_PORT is set: rate() of the counters is its throughput. */
export function importMetrics(registry: Registry = new Registry()): ImportMetrics {
  return {
    registry,
    resourcesRead: new Counter({ name: 'bulkflow_import_resources_total', help: 'Resources read by the import and handed to the store', registers: [registry] }),
    filesRead: new Counter({ name: 'bulkflow_import_files_total', help: 'Files the import has read completely', registers: [registry] }),
  };
}

/** An import's progress callback that moves the import counters by what each report adds. */
export function countImportProgress(metrics: ImportMetrics): (progress: { filesDone: number; resources: number }) => void {
  let files = 0;
  let resources = 0;
  return (progress) => {
    metrics.filesRead.inc(progress.filesDone - files);
    metrics.resourcesRead.inc(progress.resources - resources);
    files = progress.filesDone;
    resources = progress.resources;
  };
}
