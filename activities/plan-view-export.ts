/** Planning a view export: fix its snapshot and cut each type the views read into partitions. */
import type { Pool } from 'pg';
import type { PlannedPartition } from '../src/contracts/bulk-export';
import { atSnapshot } from '../src/contracts/export-window';
import type { PlanViewExportInput, ViewExportPlan } from '../src/contracts/view-export';
import { ResourceStore } from '../src/store/resource-store';
import { planPartitions } from '../src/store/snapshot-planner';

export async function planViewExport(pool: Pool, input: PlanViewExportInput): Promise<ViewExportPlan> {
  const window = atSnapshot(input.window, await new ResourceStore(pool, input.window.tenant).snapshotTime());
  const totals: Record<string, number> = {};
  const partitions: PlannedPartition[] = [];
  for (const type of input.types) {
    const { count, bounds } = await planPartitions(pool, { ...window, resourceType: type }, input.partitionSize);
    totals[type] = count;
    if (count === 0) continue;
    for (let p = 0; p <= bounds.length; p++) partitions.push({ type, partition: p, after: bounds[p - 1], upTo: bounds[p] });
  }
  return { transactionTime: window.transactionTime, totals, partitions };
}
