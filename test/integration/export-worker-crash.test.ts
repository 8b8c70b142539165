/**
 * Durability: the worker process is killed with SIGKILL in the middle of an export and
 * started again; the export still ends with every resource exactly once.
 */
import type { ChildProcess } from 'node:child_process';
import { generatePopulation } from '../../src/generate/population';
import { statusQuery } from '../../workflows/bulk-export';
import type { ExportStatus } from '../../src/contracts/bulk-export';
import { downloadAll, kickOff, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';
import { startWorkerProcess as startWorker } from '../support/worker-process';

describe('an export whose worker is killed', () => {
  let stack: ExportStack;
  const workers: ChildProcess[] = [];

  const startWorkerProcess = () => {
    const child = startWorker(stack);
    workers.push(child);
    return child;
  };

  beforeAll(async () => {
    stack = await startExportStack({
      settings: { partitionSize: 500, maxPartResources: 100, maxParallelPartitions: 1, heartbeatTimeoutMs: 2000 },
    });
  });
  afterAll(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await stack.close();
  });

  it('completes after SIGKILL and restart with every resource exactly once', async () => {
    const expected = new Set<string>();
    const resources = [...generatePopulation({ patients: 60, seed: 99 })];
    for (let i = 0; i < resources.length; i += 2000) {
      for (const r of await stack.store.write(resources.slice(i, i + 2000).map((resource) => ({ op: 'put' as const, resource })))) {
        expected.add(`${r.resourceType}/${r.id}/${r.versionId}`);
      }
    }

    const first = startWorkerProcess();
    const statusUrl = await kickOff(stack);
    const handle = stack.client.workflow.getHandle(statusUrl.split('/').pop()!);

    // Kill once some, but not all, partitions are done.
    let atKill: ExportStatus | undefined;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const status = await handle.query(statusQuery).catch(() => undefined);
      if (status && status.partitionsDone >= 1) {
        first.kill('SIGKILL');
        atKill = status;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(atKill).toBeDefined();
    expect(atKill!.partitionsDone).toBeLessThan(atKill!.partitionsTotal);
    await new Promise((resolve) => first.once('exit', resolve));

    startWorkerProcess();
    const { manifest } = await pollUntilDone(statusUrl, 120_000);
    const { keys, byFile } = await downloadAll(manifest);
    expect(keys.length).toBe(expected.size);
    expect(new Set(keys)).toEqual(expected);
    byFile.forEach((file, i) => expect(file.lines).toHaveLength(manifest.output[i].count));
  });
});
