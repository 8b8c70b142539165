/**
 * Moving the runtime under running exports: an export starts on a worker on Node 20 (the
 * runtime of every release before the pinned one), that worker is killed mid-export, and a
 * worker on the pinned runtime (the one running this test) finishes it with every resource
 * exactly once. Node 20 comes from the npm registry like the pinned runtime
 * (deploy/install-node.sh), so the test needs no Node 20 on the machine.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { generatePopulation } from '../../src/generate/population';
import { statusQuery } from '../../workflows/bulk-export';
import { downloadAll, kickOff, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';
import { startWorkerProcess } from '../support/worker-process';

const PREVIOUS_RUNTIME = '20.20.2';
const root = path.resolve(__dirname, '..', '..');

jest.setTimeout(240_000);

describe('an export started on Node 20 and finished on the pinned runtime', () => {
  let stack: ExportStack;
  let node20: string;
  const workers: ChildProcess[] = [];

  beforeAll(async () => {
    const bin = execFileSync('bash', [path.join(root, 'deploy', 'install-node.sh'), PREVIOUS_RUNTIME], { encoding: 'utf8' }).trim().split('\n').pop()!;
    node20 = path.join(bin, 'node');
    stack = await startExportStack({ settings: { partitionSize: 400, maxPartResources: 100, maxParallelPartitions: 1, heartbeatTimeoutMs: 2000 } });
  });
  afterAll(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await stack.close();
  });

  it('ends with every resource exactly once, with partitions done on each runtime', async () => {
    expect(execFileSync(node20, ['--version'], { encoding: 'utf8' }).trim()).toBe(`v${PREVIOUS_RUNTIME}`);
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThan(20);
    const expected = new Set<string>();
    const resources = [...generatePopulation({ patients: 60, seed: 2020 })];
    for (let i = 0; i < resources.length; i += 2000) {
      for (const r of await stack.store.write(resources.slice(i, i + 2000).map((resource) => ({ op: 'put' as const, resource })))) expected.add(`${r.resourceType}/${r.id}/${r.versionId}`);
    }

    const old = startWorkerProcess(stack, stack.taskQueue, node20);
    workers.push(old);
    const statusUrl = await kickOff(stack);
    const handle = stack.client.workflow.getHandle(statusUrl.split('/').pop()!);
    let doneOnOld = 0;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && doneOnOld === 0) {
      const status = await handle.query(statusQuery).catch(() => undefined);
      if (status && status.partitionsDone >= 1) {
        old.kill('SIGKILL');
        expect(status.partitionsDone).toBeLessThan(status.partitionsTotal);
        doneOnOld = status.partitionsDone;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(doneOnOld).toBeGreaterThan(0);
    await new Promise((resolve) => (old.exitCode === null && old.signalCode === null ? old.once('exit', resolve) : resolve(undefined)));

    const current = startWorkerProcess(stack);
    workers.push(current);
    const { manifest } = await pollUntilDone(statusUrl, 180_000);
    const { keys, byFile } = await downloadAll(manifest);
    expect(keys.length).toBe(expected.size);
    expect(new Set(keys)).toEqual(expected);
    byFile.forEach((file, i) => expect(file.lines).toHaveLength(manifest.output[i].count));

    // Both runtimes did work of this one workflow: activities completed by each worker's identity.
    const events = (await handle.fetchHistory()).events ?? [];
    const byWorker = new Set(events.map((e) => e.activityTaskStartedEventAttributes?.identity).filter((id): id is string => Boolean(id)).map((id) => id.split('@')[0]));
    expect(byWorker).toEqual(new Set([String(old.pid), String(current.pid)]));
  });
});
