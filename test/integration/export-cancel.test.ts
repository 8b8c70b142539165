/**
 * DELETE in the middle of an export: some partitions have written their files, another is
 * still running. The running partition is cancelled, every file is deleted, and the status
 * URL answers 404.
 */
import { Context } from '@temporalio/activity';
import { statusQuery } from '../../workflows/bulk-export';
import { kickOff, startExportStack, type ExportStack } from '../support/export-stack';
import { waitFor } from '../support/wait';

describe('cancelling a running export', () => {
  let stack: ExportStack;

  beforeAll(async () => {
    stack = await startExportStack({ settings: { partitionSize: 5, maxParallelPartitions: 1, heartbeatTimeoutMs: 2000 } });
    await stack.store.write(
      Array.from({ length: 12 }, (_, i) => ({ op: 'put' as const, resource: { resourceType: 'Patient', id: `p${i}` } })),
    );
  });
  afterAll(() => stack.close());

  it('stops the running partition, deletes the files already written and answers 404', async () => {
    let cancelledWhileRunning = false;
    await stack.startWorker((real) => ({
      ...real,
      // Partitions after the first hold on (heartbeating) until cancellation reaches them.
      exportPartition: async (input) => {
        if (input.partition.partition === 0) return real.exportPartition(input);
        const context = Context.current();
        for (;;) {
          context.heartbeat();
          try {
            await context.sleep(100);
          } catch (err) {
            cancelledWhileRunning = true;
            throw err;
          }
        }
      },
    }));

    const statusUrl = await kickOff(stack, '?_type=Patient');
    const exportId = statusUrl.split('/').pop()!;
    const handle = stack.client.workflow.getHandle(exportId);
    await waitFor(async () => ((await handle.query(statusQuery).catch(() => undefined))?.partitionsDone ?? 0) >= 1);
    expect((await stack.output.list(`${stack.store.tenant}/${exportId}/`)).length).toBe(1);

    const res = await fetch(statusUrl, { method: 'DELETE' });
    expect(res.status).toBe(202);
    expect((await fetch(statusUrl)).status).toBe(404);
    await waitFor(async () => (await handle.describe()).status.name === 'CANCELLED');
    expect(cancelledWhileRunning).toBe(true);
    expect(await stack.output.list(`${stack.store.tenant}/${exportId}/`)).toEqual([]);
    expect((await fetch(`${stack.fhir}/bulkfiles/${exportId}/Patient-0000-0000.ndjson`)).status).toBe(404);
  });
});
