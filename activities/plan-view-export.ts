/** Planning a view export: fix its snapshot and cut each type the views read into partitions. */
import type { Pool } from 'pg';
import type { PlannedPartition } from '../src/contracts/bulk-export';
import { atSnapshot } from '../src/contracts/export-window';
import { MAX_PARTITIONS } from '../src/contracts/history-budget';
import type { PlanViewExportInput, ViewExportPlan } from '../src/contracts/view-export';
import { ResourceStore } from '../src/store/resource-store';
import { capPartitions, planPartitions } from '../src/store/snapshot-planner';

export async function planViewExport(pool: Pool, input: PlanViewExportInput): Promise<ViewExportPlan> {
  // A given snapshot was handed out by snapshotTime() before: every write stamped up to it has committed.
  const window = atSnapshot(input.window, input.transactionTime ?? (await new ResourceStore(pool, input.window.tenant).snapshotTime()));
  const totals: Record<string, number> = {};
  const planned: Array<{ type: string; bounds: PlannedPartition['after'][] }> = [];
  for (const type of input.types) {
    const { count, bounds } = await planPartitions(pool, { ...window, resourceType: type }, input.partitionSize);
    totals[type] = count;
    if (count > 0) planned.push({ type, bounds });
  }
  // Each of a type's partitions runs once per view that reads it: the cap counts them so.
  const weights = planned.map(({ type }) => input.viewsPerType?.[type] ?? 1);
  const capped = capPartitions(planned.map((p) => p.bounds), input.maxPartitions ?? MAX_PARTITIONS, weights);
  const partitions: PlannedPartition[] = planned.flatMap(({ type }, i) => {
    const bounds = capped[i]!;
    return Array.from({ length: bounds.length + 1 }, (_, p) => ({ type, partition: p, after: bounds[p - 1], upTo: bounds[p] }));
  });
  return { transactionTime: window.transactionTime, totals, partitions };
}
