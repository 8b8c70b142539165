/**
 * How the export workflows call their activities. Attempts are bounded: what still fails after
 * them (or at once, when an activity says retrying cannot help) fails the export with its
 * cause. Activity options are not part of a history's commands, so changing them is replay-safe.
 */
import { ActivityCancellationType, proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { partitionTaskQueue } from '../src/contracts/task-queues';

/** Attempts of an activity before the export fails: with backoff up to a minute, about eight minutes of a lasting fault. */
export const MAX_ATTEMPTS = 12;

const common: ActivityOptions = {
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', maximumAttempts: MAX_ATTEMPTS },
};

/** Short control work: file listings, deletes, the error file, the ledger. */
export const controlActivities = () => proxyActivities<Activities>({ ...common, startToCloseTimeout: '2 minutes' });

/** Planning reads the whole window once: as long as it needs, alive by its heartbeats. */
export const planningActivities = (heartbeatTimeoutMs: number) =>
  proxyActivities<Activities>({ ...common, startToCloseTimeout: '1 hour', heartbeatTimeout: heartbeatTimeoutMs });

/** Partitions: on their own task queue, alive by their heartbeats, resumed from their cursor. */
export const partitionActivities = (heartbeatTimeoutMs: number) =>
  proxyActivities<Activities>({ ...common, startToCloseTimeout: '2 hours', heartbeatTimeout: heartbeatTimeoutMs, taskQueue: partitionTaskQueue(workflowInfo().taskQueue) });
