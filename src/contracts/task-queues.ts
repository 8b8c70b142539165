/**
 * Partition activities (hours of reading and writing) run on a task queue of their own beside
 * the workflows' queue, with their own slots: planning, cleanup, webhooks and workflow tasks
 * never wait behind them. Derived from the workflows' queue, so one setting names both. A leaf.
 */
export const partitionTaskQueue = (workflowTaskQueue: string) => `${workflowTaskQueue}-partitions`;
