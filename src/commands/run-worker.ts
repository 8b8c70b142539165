import { Submitters } from '../bulk-submit/submitters';
import { NativeConnection } from '@temporalio/worker';
import { Connection } from '@temporalio/client';
import type { Config } from '../config';
import { ensureSearchAttributes } from '../temporal/search-attribute-registry';
import type { Logger } from '../log';
import { createOutputStore } from '../output/create-output-store';
import { createPool } from '../store/database';
import { migrate } from '../store/migrate';
import { installTemporalRuntime } from '../temporal/runtime';
import { workerMetrics, type WorkerMetrics } from '../metrics/metrics';
import { findFreePort } from '../process/free-port';
import { createExportWorker } from '../temporal/worker';
import { temporalConnectionOptions } from '../temporal/connection-options';
import { loadPayloadKeys } from '../temporal/payload-keys';
import { partitionTaskQueue } from '../contracts/task-queues';

export interface RunningWorker {
  /** Resolves when the worker stopped by itself (an error) or after `stop()`. */
  done: Promise<void>;
  /** Stops polling, lets running activities finish or heartbeat, then closes connections. */
  stop(): Promise<void>;
  metrics: WorkerMetrics;
  /** The Temporal SDK's own metrics in Prometheus text (task slots, schedule-to-start latency, failures); with METRICS_PORT only. */
  sdkMetrics?: () => Promise<string>;
  /** Why the worker is not ready (not polling, the store unreachable), or undefined. */
  notReady(): Promise<string | undefined>;
}

export async function runWorker(config: Config, temporalAddress: string, log: Logger): Promise<RunningWorker> {
  // The SDK serves its metrics on a loopback port of its own; the metrics listener passes them on.
  const sdkMetricsPort = config.metricsPort === undefined ? undefined : await findFreePort();
  installTemporalRuntime(log, config.logLevel, sdkMetricsPort);
  // Workflows set these attributes: without them every export would fail at its first task.
  const operator = await Connection.connect(temporalConnectionOptions(temporalAddress, config.temporalTls));
  try {
    await ensureSearchAttributes(operator, config.temporalNamespace, { register: config.temporalRegisterSearchAttributes });
  } finally {
    await operator.close();
  }
  // A partition holds up to two connections at once (its stream and a probe), planning three.
  const pool = createPool(config.databaseUrl, { max: config.workerMaxConcurrentActivities * 3 + config.workerMaxConcurrentPartitions * 2 });
  await migrate(pool);
  const connection = await NativeConnection.connect(temporalConnectionOptions(temporalAddress, config.temporalTls));
  const metrics = workerMetrics();
  const payloadKeys = await loadPayloadKeys(pool, config.temporalPayloadKeys);
  const worker = await createExportWorker({ connection, config, dependencies: { pool, output: createOutputStore(config), sqlLimits: config.sql.export, submitters: new Submitters(config.bulkSubmit.submitters) }, payloadKeys, metrics });
  log.info('worker polling', { address: temporalAddress, taskQueue: config.temporalTaskQueue, partitionTaskQueue: partitionTaskQueue(config.temporalTaskQueue) });
  const done = worker.run().finally(async () => {
    await connection.close();
    await pool.end();
  });
  return {
    done,
    metrics,
    sdkMetrics: sdkMetricsPort === undefined ? undefined : async () => (await fetch(`http://127.0.0.1:${sdkMetricsPort}/metrics`)).text(),
    notReady: async () => {
      if (worker.getState() !== 'RUNNING') return `the worker is ${worker.getState()}`;
      await pool.query('SELECT 1').catch((err: Error) => Promise.reject(new Error(`PostgreSQL: ${err.message}`)));
      return undefined;
    },
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}
