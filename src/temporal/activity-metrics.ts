/**
 * Every activity attempt counted and timed by activity and outcome, and the part files a
 * finished partition activity wrote added to the resources and bytes exported. Results are
 * counted once, when an attempt completes: a retried partition returns its earlier attempts'
 * parts with its own, and only its completed attempt returns at all.
 */
import type { WorkerMetrics } from '../metrics/metrics';

type ActivityFunction = (...args: never[]) => Promise<unknown>;

const PART_WRITERS: Record<string, 'bulk' | 'view'> = { exportPartition: 'bulk', exportPatientBlocks: 'bulk', exportViewPartition: 'view' };

function countParts(metrics: WorkerMetrics, kind: 'bulk' | 'view', result: unknown): void {
  const parts = (result as { parts?: Array<{ count: number; bytes: number }> } | undefined)?.parts ?? [];
  for (const part of parts) {
    metrics.resourcesExported.inc({ kind }, part.count);
    metrics.bytesExported.inc({ kind }, part.bytes);
  }
}

export function instrumentActivities<T extends Record<string, ActivityFunction>>(activities: T, metrics: WorkerMetrics): T {
  const instrumented: Record<string, ActivityFunction> = {};
  for (const [name, run] of Object.entries(activities)) {
    instrumented[name] = async (...args: never[]) => {
      const stop = metrics.activityDuration.startTimer({ activity: name });
      try {
        const result = await run(...args);
        stop({ outcome: 'completed' });
        metrics.activityRuns.inc({ activity: name, outcome: 'completed' });
        if (PART_WRITERS[name]) countParts(metrics, PART_WRITERS[name], result);
        return result;
      } catch (err) {
        stop({ outcome: 'failed' });
        metrics.activityRuns.inc({ activity: name, outcome: 'failed' });
        throw err;
      }
    };
  }
  return instrumented as T;
}
