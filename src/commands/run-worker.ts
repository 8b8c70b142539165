import { NativeConnection, Runtime, DefaultLogger } from '@temporalio/worker';
import { Connection } from '@temporalio/client';
import type { Config } from '../config';
import { ensureSearchAttributes } from '../temporal/search-attribute-registry';
import type { Logger } from '../log';
import { createOutputStore } from '../output/create-output-store';
import { createPool } from '../store/database';
import { migrate } from '../store/migrate';
import { createExportWorker } from '../temporal/worker';

export interface RunningWorker {
  /** Resolves when the worker stopped by itself (an error) or after `stop()`. */
  done: Promise<void>;
  /** Stops polling, lets running activities finish or heartbeat, then closes connections. */
  stop(): Promise<void>;
}

export async function runWorker(config: Config, temporalAddress: string, log: Logger): Promise<RunningWorker> {
  Runtime.install({ logger: new DefaultLogger(config.logLevel === 'debug' ? 'DEBUG' : 'WARN') });
  // Workflows set these attributes: without them every export would fail at its first task.
  const operator = await Connection.connect({ address: temporalAddress });
  try {
    await ensureSearchAttributes(operator, config.temporalNamespace, { register: config.temporalRegisterSearchAttributes });
  } finally {
    await operator.close();
  }
  const pool = createPool(config.databaseUrl, { max: config.workerMaxConcurrentActivities + 1 });
  await migrate(pool);
  const connection = await NativeConnection.connect({ address: temporalAddress });
  const worker = await createExportWorker({ connection, config, dependencies: { pool, output: createOutputStore(config) } });
  log.info('worker polling', { address: temporalAddress, taskQueue: config.temporalTaskQueue });
  const done = worker.run().finally(async () => {
    await connection.close();
    await pool.end();
  });
  return {
    done,
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}
