/**
 * Durability: the worker process is killed with SIGKILL in the middle of an export and
 * started again; the export still ends with every resource exactly once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { generatePopulation } from '../../src/generate/population';
import { statusQuery } from '../../workflows/bulk-export';
import type { ExportStatus } from '../../src/contracts/bulk-export';
import { testEnvironment } from '../harness/environment';
import { downloadAll, kickOff, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';

const cli = path.resolve(__dirname, '../../dist/src/cli.js');

describe('an export whose worker is killed', () => {
  let stack: ExportStack;
  const workers: ChildProcess[] = [];

  const startWorkerProcess = () => {
    const child = spawn(process.execPath, [cli, 'worker'], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: testEnvironment.temporalAddress,
        TEMPORAL_NAMESPACE: testEnvironment.temporalNamespace,
        TEMPORAL_TASK_QUEUE: stack.taskQueue,
        DATABASE_URL: testEnvironment.databaseUrl,
        OUTPUT_BACKEND: 'local',
        OUTPUT_DIR: stack.outputDir!,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    workers.push(child);
    return child;
  };

  beforeAll(async () => {
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` (npm test does)`);
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
