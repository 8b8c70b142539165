import { existsSync } from 'node:fs';
import path from 'node:path';
import { NativeConnection, Worker, type InjectedSinks } from '@temporalio/worker';
import type { Config } from '../config';
import { createActivities, type Activities, type ActivityDependencies } from '../../activities';
import type { WorkerMetrics } from '../metrics/metrics';
import { instrumentActivities } from './activity-metrics';
import { workerTracingOptions } from './tracing-interceptors';
import type { ExportMetricsSinks } from '../../workflows/export-metrics';
import type { PayloadKey } from './payload-codec';
import { encryptingDataConverter } from './data-converter';

/** Where `npm run build` leaves the prebuilt workflow bundle (so the worker skips webpack at start). */
export const workflowBundlePath = path.resolve(__dirname, '..', '..', 'workflow-bundle.js');

export interface ExportWorkerOptions {
  connection: NativeConnection;
  config: Pick<Config, 'temporalNamespace' | 'temporalTaskQueue' | 'workerMaxConcurrentActivities'> & Partial<Pick<Config, 'workerShutdownGraceSeconds'>>;
  dependencies: ActivityDependencies;
  /** The keys that encrypt its payloads (payload-keys.ts); none only for histories from before encryption. */
  payloadKeys: readonly PayloadKey[] | 'unencrypted';
  /** A prebuilt bundle; defaults to the build output when present, else bundles the sources. */
  workflowBundleCodePath?: string;
  /** Decorates the real activities (tests use it to act between two steps of an export). */
  wrapActivities?: (real: Activities) => Activities;
  /** Where activity runs, durations and exported resources are counted. */
  metrics?: WorkerMetrics;
}

/** The worker that runs export workflows and their activities on the configured task queue. */
export async function createExportWorker(options: ExportWorkerOptions): Promise<Worker> {
  const instrument = (activities: Activities) => (options.metrics ? instrumentActivities(activities, options.metrics) : activities);
  const codePath = options.workflowBundleCodePath ?? (existsSync(workflowBundlePath) ? workflowBundlePath : undefined);
  const tracing = workerTracingOptions();
  return Worker.create({
    connection: options.connection,
    namespace: options.config.temporalNamespace,
    taskQueue: options.config.temporalTaskQueue,
    // A prebuilt bundle has the workflow interceptors built in (build-workflow-bundle.ts).
    ...(codePath ? { workflowBundle: { codePath } } : { workflowsPath: require.resolve('../../workflows') }),
    interceptors: codePath ? { activity: tracing.interceptors.activity } : tracing.interceptors,
    ...(options.payloadKeys === 'unencrypted' ? {} : { dataConverter: encryptingDataConverter(options.payloadKeys) }),
    activities: instrument((options.wrapActivities ?? ((real) => real))(createActivities(options.dependencies))),
    maxConcurrentActivityTaskExecutions: options.config.workerMaxConcurrentActivities,
    maxConcurrentWorkflowTaskExecutions: 10,
    // A cancellation reaches an activity only in a heartbeat's answer, and the SDK sends beats at
    // most this often (by default up to 80% of the heartbeat timeout): a DELETE stops work within it.
    maxHeartbeatThrottleInterval: '2 seconds',
    defaultHeartbeatThrottleInterval: '2 seconds',
    maxCachedWorkflows: 100,
    sinks: workflowSinks(options.metrics),
    // After SIGTERM, running activities get this long to finish or heartbeat their cursor before
    // they are cancelled; a cancelled partition is retried on another worker from that cursor.
    shutdownGraceTime: `${options.config.workerShutdownGraceSeconds ?? 10} seconds`,
  });
}

/** Every sink the workflows call (replaying workers need them too). */
export function workflowSinks(metrics?: WorkerMetrics) {
  return { ...exportMetricsSinks(metrics), ...workerTracingOptions().sinks };
}

/** Where workflows tell how an export ended (once, not on replay), into the worker's metrics when it has them. */
function exportMetricsSinks(metrics: WorkerMetrics | undefined): InjectedSinks<ExportMetricsSinks> {
  return {
    exportMetrics: {
      finished: {
        fn: (_info, kind, level, tenant, outcome) => metrics?.exportsFinished.inc({ kind, level, tenant, outcome }),
        callDuringReplay: false,
      },
    },
  };
}
