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
import { partitionTaskQueue } from '../contracts/task-queues';

/** Where `npm run build` leaves the prebuilt workflow bundle (so the worker skips webpack at start). */
export const workflowBundlePath = path.resolve(__dirname, '..', '..', 'workflow-bundle.js');

export interface ExportWorkerOptions {
  connection: NativeConnection;
  config: Pick<Config, 'temporalNamespace' | 'temporalTaskQueue' | 'workerMaxConcurrentActivities'> & Partial<Pick<Config, 'workerMaxConcurrentPartitions' | 'workerShutdownGraceSeconds'>>;
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

/** The names of the activities that run on the partition task queue. */
const PARTITION_ACTIVITIES = ['exportPartition', 'exportPatientBlocks', 'exportViewPartition', 'exportSqlSubject'] as const;

/**
 * A bulkflow worker: one SDK worker on the configured task queue for workflows and control
 * activities (planning, cleanup, webhooks), and one on its partition queue for partition
 * activities, each with its own slots, so control work never waits behind long partitions.
 */
export class ExportWorker {
  constructor(
    private readonly control: Worker,
    private readonly partitions: Worker,
  ) {}

  /** Runs both until both stop; one that fails stops the other, and its error is thrown. */
  async run(): Promise<void> {
    const both = await Promise.allSettled(
      [this.control, this.partitions].map((worker) =>
        worker.run().catch((err: unknown) => {
          this.shutdown();
          throw err;
        }),
      ),
    );
    const failed = both.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** RUNNING only while both poll; else the state of the one that does not. */
  getState(): ReturnType<Worker['getState']> {
    const control = this.control.getState();
    return control === 'RUNNING' ? this.partitions.getState() : control;
  }

  shutdown(): void {
    for (const worker of [this.control, this.partitions]) if (worker.getState() === 'RUNNING') worker.shutdown();
  }
}

/** The worker that runs export workflows and their activities on the configured task queues. */
export async function createExportWorker(options: ExportWorkerOptions): Promise<ExportWorker> {
  const instrument = (activities: Activities) => (options.metrics ? instrumentActivities(activities, options.metrics) : activities);
  const codePath = options.workflowBundleCodePath ?? (existsSync(workflowBundlePath) ? workflowBundlePath : undefined);
  const tracing = workerTracingOptions();
  const activities = instrument((options.wrapActivities ?? ((real) => real))(createActivities(options.dependencies)));
  const partitionNames: readonly string[] = PARTITION_ACTIVITIES;
  const shared = {
    connection: options.connection,
    namespace: options.config.temporalNamespace,
    ...(options.payloadKeys === 'unencrypted' ? {} : { dataConverter: encryptingDataConverter(options.payloadKeys) }),
    // A cancellation reaches an activity only in a heartbeat's answer, and the SDK sends beats at
    // most this often (by default up to 80% of the heartbeat timeout): a DELETE stops work within it.
    maxHeartbeatThrottleInterval: '2 seconds',
    defaultHeartbeatThrottleInterval: '2 seconds',
    // After SIGTERM, running activities get this long to finish or heartbeat their cursor before
    // they are cancelled; a cancelled partition is retried on another worker from that cursor.
    shutdownGraceTime: `${options.config.workerShutdownGraceSeconds ?? 10} seconds`,
  } as const;
  const control = await Worker.create({
    ...shared,
    taskQueue: options.config.temporalTaskQueue,
    // A prebuilt bundle has the workflow interceptors built in (build-workflow-bundle.ts).
    ...(codePath ? { workflowBundle: { codePath } } : { workflowsPath: require.resolve('../../workflows') }),
    interceptors: codePath ? { activity: tracing.interceptors.activity } : tracing.interceptors,
    // Every activity, partitions included: exports started by releases before the partition queue
    // scheduled their partitions here, and new workers must still run those.
    activities,
    maxConcurrentActivityTaskExecutions: options.config.workerMaxConcurrentActivities,
    maxConcurrentWorkflowTaskExecutions: 10,
    maxCachedWorkflows: 100,
    sinks: workflowSinks(options.metrics),
  });
  const partitions = await Worker.create({
    ...shared,
    taskQueue: partitionTaskQueue(options.config.temporalTaskQueue),
    interceptors: { activity: tracing.interceptors.activity },
    activities: Object.fromEntries(Object.entries(activities).filter(([name]) => partitionNames.includes(name))),
    maxConcurrentActivityTaskExecutions: options.config.workerMaxConcurrentPartitions ?? options.config.workerMaxConcurrentActivities,
  });
  return new ExportWorker(control, partitions);
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
      lakeRun: {
        fn: (_info, tenant, schedule, outcome, rows, bytes) => {
          metrics?.lakeRuns.inc({ tenant, schedule, outcome });
          metrics?.lakeRows.inc({ tenant, schedule }, rows);
          metrics?.lakeBytes.inc({ tenant, schedule }, bytes);
        },
        callDuringReplay: false,
      },
    },
  };
}
