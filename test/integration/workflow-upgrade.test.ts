/**
 * Deploying workflow code while exports run: an export starts on the previous release (its
 * workflow code, kept as released in test/fixtures/previous-release, and its API without payload encryption),
 * its worker is replaced mid-export by one running today's code, and the export finishes with
 * every resource exactly once. Today's `patched('failures-end-cleanly')` keeps the old path for
 * that export (no marker in its history) and takes the new one for an export started after.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { Client } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { generatePopulation } from '../../src/generate/population';
import { encryptingDataConverter } from '../../src/temporal/data-converter';
import { FAILURES_END_CLEANLY } from '../../workflows/patches';
import { statusQuery } from '../../workflows/bulk-export';
import { testEnvironment } from '../harness/environment';
import { kickOff, startExportStack, type ExportStack } from '../support/export-stack';
import { waitFor } from '../support/wait';

/**
 * The workflow code of the last release before payload encryption, the partition queue and the
 * first patch (commit fa0cf66: `git archive fa0cf66 workflows src/contracts`, gzipped), kept as
 * released so the test needs no git history. Workflow code imports nothing else at run time.
 */
const PREVIOUS_RELEASE = path.resolve(__dirname, '..', 'fixtures', 'previous-release', 'workflows-fa0cf66.tar.gz');
const root = path.resolve(__dirname, '..', '..');

/** The previous release's workflow bundle, built from its sources. */
async function previousReleaseBundle(dir: string): Promise<string> {
  execFileSync('tar', ['-xzf', PREVIOUS_RELEASE, '-C', dir]);
  symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  const noop = () => undefined;
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(dir, 'workflows', 'index.ts'), logger: { trace: noop, debug: noop, info: noop, log: noop, warn: noop, error: console.error } });
  const bundle = path.join(dir, 'previous-release-bundle.js');
  writeFileSync(bundle, code);
  return bundle;
}

describe('a workflow change deployed while an export runs', () => {
  let stack: ExportStack;
  let dir: string;
  let previousBundle: string;
  const resources = [...generatePopulation({ patients: 4, seed: 606 })] as Array<{ resourceType: string; id: string }>;
  const expected = resources.filter((r) => r.resourceType === 'Patient' || r.resourceType === 'Encounter');

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-previous-'));
    previousBundle = await previousReleaseBundle(dir);
    // The previous release's API: no payload encryption yet.
    stack = await startExportStack({ unencryptedClient: true, settings: { partitionSize: 3, maxParallelPartitions: 1 } });
    await stack.store.write(resources.map((resource) => ({ op: 'put' as const, resource })));
  }, 180_000);
  afterAll(async () => {
    await stack.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finishes an export begun on the previous release on today\'s worker, every resource exactly once', async () => {
    // The previous release's worker plans and exports the first partitions, then is replaced.
    let exportedByOld = 0;
    const old = await stack.startWorker(
      (real) => ({
        ...real,
        exportPartition: async (input) => {
          if (exportedByOld >= 2) throw ApplicationFailure.retryable('this worker is being replaced (test)');
          exportedByOld++;
          return real.exportPartition(input);
        },
      }),
      { unencrypted: true, workflowBundleCodePath: previousBundle },
    );
    const statusUrl = await kickOff(stack, '?_type=Patient,Encounter');
    const workflowId = statusUrl.split('/').pop()!;
    const reader = new Client({ connection: stack.client.connection, namespace: testEnvironment.temporalNamespace, dataConverter: encryptingDataConverter(stack.payloadKeys) });
    const handle = reader.workflow.getHandle(workflowId);
    await waitFor(async () => (await handle.query(statusQuery)).partitionsDone === 2, 30_000, 'two partitions exported on the previous release');
    await old.stop();

    await stack.startWorker(); // today's code, today's encryption
    await waitFor(async () => (await handle.query(statusQuery)).phase === 'completed', 60_000, 'the export to complete on today\'s worker');
    const status = await handle.query(statusQuery);
    expect(status.partitionsDone).toBe(status.partitionsTotal);
    expect(status.partitionsTotal).toBeGreaterThan(2);

    // Every resource exactly once, read from the files themselves.
    const exported: string[] = [];
    for (const part of status.output) {
      const text = execFileSync('cat', [path.join(stack.outputDir!, part.key)]).toString();
      for (const line of text.trim().split('\n')) {
        const r = JSON.parse(line) as { resourceType: string; id: string };
        exported.push(`${r.resourceType}/${r.id}`);
      }
    }
    expect(exported.sort()).toEqual(expected.map((r) => `${r.resourceType}/${r.id}`).sort());

    // Begun before the patch: no marker, the previous behaviour to its end.
    const markers = ((await handle.fetchHistory()).events ?? []).filter((e) => e.markerRecordedEventAttributes);
    expect(markers).toEqual([]);
  });

  it('takes the patched path for an export started on today\'s code', async () => {
    const reader = new Client({ connection: stack.client.connection, namespace: testEnvironment.temporalNamespace, dataConverter: encryptingDataConverter(stack.payloadKeys) });
    const started = await reader.workflow.start('bulkExport', {
      taskQueue: stack.taskQueue,
      workflowId: `upgrade-${Date.now()}`,
      args: [
        {
          exportId: `upgrade-${Date.now()}`,
          level: 'system',
          owner: 'test',
          request: 'test',
          window: { tenant: stack.store.tenant },
          types: ['Patient'],
          lenientIssues: [],
          tuning: { partitionSize: 50, maxParallelPartitions: 1, maxPartResources: 100, maxPartBytes: 1024 ** 2, retentionMs: 1000, heartbeatTimeoutMs: 5000, manifestPageFiles: 100 },
        },
      ],
    });
    await waitFor(async () => ((await started.fetchHistory()).events ?? []).some((e) => e.markerRecordedEventAttributes), 20_000, 'the patch marker');
    const marker = ((await started.fetchHistory()).events ?? []).find((e) => e.markerRecordedEventAttributes)!;
    expect(marker.markerRecordedEventAttributes!.markerName).toBe('core_patch');
    const details = Object.values(marker.markerRecordedEventAttributes!.details ?? {}).flatMap((p) => p.payloads ?? []);
    expect(details.map((p) => Buffer.from(p.data ?? []).toString('latin1')).join()).toContain(FAILURES_END_CLEANLY);
    await started.result();
  });
});
