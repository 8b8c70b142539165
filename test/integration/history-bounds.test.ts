/**
 * Bounded histories: a Patient-level export of 50,000 listed patients with a partition size of
 * one resource plans at most MAX_PARTITIONS partitions (widened, not truncated), keeps the list
 * out of every partition's input, exports every patient exactly once, and leaves a history far
 * under Temporal's limits (50 MB, 51,200 events; it warns from 10 MB and 10,240 events).
 */
import { MAX_PARTITIONS } from '../../src/contracts/history-budget';
import { statusQuery } from '../../workflows/bulk-export';
import { awaitExport, downloadAll, kickoffHeaders, startExportStack, type ExportStack } from '../support/export-stack';

const PATIENTS = 50_000;

describe('bounded histories', () => {
  let stack: ExportStack;
  const ids = Array.from({ length: PATIENTS }, (_, i) => `listed-${String(i).padStart(5, '0')}`);

  beforeAll(async () => {
    stack = await startExportStack({ settings: { partitionSize: 1, maxParallelPartitions: 8 } });
    for (let i = 0; i < ids.length; i += 5000) {
      await stack.store.write(ids.slice(i, i + 5000).map((id) => ({ op: 'put' as const, resource: { resourceType: 'Patient', id, gender: 'unknown' } })));
    }
    // Patients outside the list: the export must leave them out.
    await stack.store.write(['unlisted-1', 'unlisted-2'].map((id) => ({ op: 'put' as const, resource: { resourceType: 'Patient', id } })));
    await stack.startWorker();
  }, 300_000);
  afterAll(() => stack.close());

  it('exports 50,000 listed patients once each, in at most MAX_PARTITIONS partitions, with a small history', async () => {
    const kick = await fetch(`${stack.fhir}/Patient/$export`, {
      method: 'POST',
      headers: { ...kickoffHeaders, 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: '_type', valueString: 'Patient' }, ...ids.map((id) => ({ name: 'patient', valueReference: { reference: `Patient/${id}` } }))] }),
    });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    const { manifest } = await awaitExport(stack.client, statusUrl, 600_000);
    const { keys } = await downloadAll(manifest);
    const exported = keys.map((k) => k.split('/')[1]);
    expect(exported.length).toBe(PATIENTS);
    expect(new Set(exported).size).toBe(PATIENTS);
    expect(exported.some((id) => id.startsWith('unlisted'))).toBe(false);

    const handle = stack.client.workflow.getHandle(statusUrl.split('/').pop()!);
    const status = await handle.query(statusQuery);
    expect(status.partitionsTotal).toBeLessThanOrEqual(MAX_PARTITIONS);
    expect(status.partitionsTotal).toBeGreaterThan(MAX_PARTITIONS / 2); // widened no more than needed

    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const bytes = (await import('@temporalio/proto')).temporal.api.history.v1.History.encode(history).finish().length;
    console.log(`50,000 patients, partition size 1: ${status.partitionsTotal} partitions, ${events.length} events, ${(bytes / 1024 ** 2).toFixed(2)} MB of history`);
    expect(events.length).toBeLessThan(10_240);
    expect(bytes).toBeLessThan(10 * 1024 ** 2);
    // The list is in no partition's input: each scheduled partition is small.
    const largest = Math.max(...events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes!.input!.payloads!.reduce((n, p) => n + (p.data?.length ?? 0), 0)));
    expect(largest).toBeLessThan(8 * 1024);
  }, 900_000);
});
