/**
 * The lake tests' data: two views of Observations (a stored flat one, an inline one with a
 * `forEach` whose row count changes with an update), the schedule body that exports them, and a
 * writer that creates, updates and deletes Observations while runs go.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { OutputStore } from '../../src/output/output-store';
import type { ResourceStore } from '../../src/store/resource-store';
import type { ExportStack } from './export-stack';
import type { LakeManifestView } from './lake-reader';
import { scheduleAdmin } from './schedule-admin';
import { waitFor } from './wait';

export interface RunView {
  startedAt: string;
  workflowId: string;
  state: string;
  reason?: string;
  transactionTime?: string;
  manifest?: LakeManifestView;
}

export const KEY = 'lake_resource_key'; // the column the schedule adds to a view without a getResourceKey() column (docs/lake.md)

/** A stored view: Observation id, status and value (one row per resource). */
export const flatView = {
  resourceType: 'ViewDefinition',
  id: 'lake-flat',
  name: 'obs_flat',
  resource: 'Observation',
  status: 'active',
  select: [{ column: [{ name: 'id', path: 'getResourceKey()' }, { name: 'status', path: 'status' }, { name: 'value', path: "value.ofType(Quantity).value", type: 'decimal' }] }],
};
/** Inline: one row per coding (zero, one or two per Observation), so an update can change how many rows a resource has. */
export const codingView = {
  resourceType: 'ViewDefinition',
  name: 'obs_codings',
  resource: 'Observation',
  status: 'active',
  select: [{ column: [{ name: 'patient', path: 'subject.getReferenceKey(Patient)' }] }, { forEach: 'code.coding', column: [{ name: 'system', path: 'system' }, { name: 'code', path: 'code' }] }],
};
/** The same view as the schedule exports it, the key column added by hand, as the docs say. */
export const codingViewKeyed = { ...codingView, select: [{ column: [{ name: KEY, path: 'getResourceKey()' }] }, ...codingView.select] };

export const sqlExport = (flat: unknown, codings: unknown) => ({
  resourceType: 'Parameters',
  parameter: [
    { name: 'subject', part: [{ name: 'name', valueString: 'obs_flat' }, flat] },
    { name: 'subject', part: [{ name: 'name', valueString: 'obs_codings' }, codings] },
  ],
});

export function observation(n: number, patient: string, codings: number) {
  return {
    resourceType: 'Observation',
    id: `o-${n}`,
    status: n % 2 ? 'final' : 'amended',
    code: { coding: Array.from({ length: codings }, (_, i) => ({ system: 'http://loinc.org', code: `${n}-${i}` })) },
    subject: { reference: `Patient/${patient}` },
    valueQuantity: { value: n, unit: '/min' },
  };
}

/** Creates, updates (to another number of codings) and deletes Observations until stopped. */
export function startWriter(store: ResourceStore, from: number) {
  let stopped = false;
  const live: number[] = [];
  const done = { created: 0, updated: 0, deleted: 0 };
  let n = from;
  const loop = (async () => {
    while (!stopped) {
      n++;
      const ops: Parameters<ResourceStore['write']>[0] = [{ op: 'put', resource: observation(n, `p-${n % 4}`, n % 3) }];
      if (live.length > 3 && n % 3 === 0) {
        const target = live[n % live.length];
        ops.push({ op: 'put', resource: { ...observation(target, `p-${target % 4}`, (n + 1) % 3), valueQuantity: { value: n * 10, unit: '/min' } } });
        done.updated++;
      }
      if (live.length > 5 && n % 4 === 0) {
        ops.push({ op: 'delete', resourceType: 'Observation', id: `o-${live.splice(n % live.length, 1)[0]}` });
        done.deleted++;
      }
      await store.write(ops);
      live.push(n);
      done.created++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    done,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** A stack's schedules admin API as the lake tests drive it: calls, reads, and one triggered run at a time. */
export function lakeSchedules(stackOf: () => ExportStack) {
  const schedules = () => scheduleAdmin(`${stackOf().url}/admin/schedules`);
  const admin = (method: string, p: string, body?: unknown) => schedules().call(method, p, body);
  const read = (id: string) => schedules().read<{ runs: RunView[]; running: string[]; watermark?: string }>(id);
  const runs = async (id: string): Promise<RunView[]> => (await read(id)).runs;
  /** Triggers a run and waits for its workflow to end; returns it (newest first in the API). */
  const runOnce = async (id: string): Promise<RunView> => {
    const before = (await runs(id))[0]?.startedAt; // the API lists the newest runs, ten at most
    await waitFor(async () => (await read(id)).running.length === 0, 60_000, 'no run going');
    await schedules().trigger(id);
    await waitFor(async () => {
      const newest = (await runs(id))[0];
      return newest.startedAt !== before && newest.state !== 'running';
    }, 120_000, 'the triggered run to end');
    // Recorded first, then its files moved and the superseded folders pruned: the workflow's end.
    const run = (await runs(id))[0];
    await stackOf().client.workflow.getHandle(run.workflowId).result().catch(() => undefined);
    return run;
  };
  return { admin, read, runOnce };
}

/** Copies every file under `prefix` of an output store into `dir` (the same relative paths): a local copy of a lake in a bucket, for a reader that reads folders. */
export async function mirror(output: OutputStore, prefix: string, dir: string): Promise<string> {
  for (const key of await output.list(prefix)) {
    const file = path.join(dir, key.slice(prefix.length));
    mkdirSync(path.dirname(file), { recursive: true });
    await pipeline((await output.openReader(key))!, createWriteStream(file));
  }
  return dir;
}
