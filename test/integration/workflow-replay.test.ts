/**
 * Exports live as long as their files, so a deploy meets exports started by older workflow
 * code. Every recorded history in test/fixtures/histories (one per workflow and branch, see
 * test/replay/record-histories.ts) replays against today's workflow bundle; a change that is
 * not replay-safe fails here with the history that it breaks.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { workflowSinks } from '../../src/temporal/worker';
import { encryptingDataConverter } from '../../src/temporal/data-converter';
import { REPLAY_FIXTURE_KEY } from '../support/fixture-key';

const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'histories');
/** Today's workflow code, as `npm run build` bundles it for the worker. */
const WORKFLOW_BUNDLE = path.resolve(__dirname, '..', '..', 'dist', 'workflow-bundle.js');

interface RecordedHistory {
  workflowType: string;
  status: string;
  workflowId: string;
  history: unknown;
}

const recorded = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((file) => ({ file, ...(JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8')) as RecordedHistory) }));

describe('recorded workflow histories replay against today\'s workflow code', () => {
  it('has a history of every workflow and of each branch (_since deletions, lenient errors, failures before and after failures-end-cleanly, cancellations, submissions, lake runs)', () => {
    expect(new Set(recorded.map((r) => r.workflowType))).toEqual(new Set(['bulkExport', 'scheduledExport', 'deliverWebhook', 'asyncRequest', 'viewExport', 'bulkSubmission', 'scheduledViewExport']));
    // A lake schedule's full run (with pruning), an incremental run (with deletions), and a run whose stored view changed.
    expect(recorded.filter((r) => r.workflowType === 'scheduledViewExport').map((r) => `${r.file} ${r.status}`).sort()).toEqual(['scheduledViewExport-full.json COMPLETED', 'scheduledViewExport-incremental.json COMPLETED', 'scheduledViewExport-view-changed.json FAILED']);
    // Several manifests then completed, a replacing manifest, stopped while a file loads, an $import; each then waits out its retention.
    expect(recorded.filter((r) => r.workflowType === 'bulkSubmission').map((r) => r.file).sort()).toEqual(['bulkSubmission-completed.json', 'bulkSubmission-import.json', 'bulkSubmission-replaced.json', 'bulkSubmission-stopped.json']);
    expect(recorded.filter((r) => r.workflowType === 'viewExport').map((r) => r.status).sort()).toEqual(['CANCELLED', 'COMPLETED', 'FAILED']);
    expect(recorded.filter((r) => r.workflowType === 'bulkExport').map((r) => r.status).sort()).toEqual(['CANCELLED', 'COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED', 'FAILED', 'FAILED']);
    expect(recorded.filter((r) => r.workflowType === 'scheduledExport').map((r) => r.status).sort()).toEqual(['CANCELLED', 'COMPLETED', 'FAILED']);
    expect(recorded.filter((r) => r.workflowType === 'asyncRequest').map((r) => r.status).sort()).toEqual(['CANCELLED', 'COMPLETED']);
  });

  it('replays every one without a determinism error', async () => {
    // The SDK reads the JSON itself (as `temporal workflow show --output json` writes it).
    const histories = recorded.map((r) => ({ workflowId: r.workflowId, history: r.history }));
    const failures: string[] = [];
    let replayed = 0;
    // Fixtures recorded since payload encryption are encrypted with the fixture key; older ones are in clear.
    const dataConverter = encryptingDataConverter([REPLAY_FIXTURE_KEY]);
    for await (const result of Worker.runReplayHistories({ workflowBundle: { codePath: WORKFLOW_BUNDLE }, sinks: workflowSinks(), dataConverter }, histories)) {
      replayed++;
      if (result.error) failures.push(`${recorded.find((r) => r.workflowId === result.workflowId)?.file}: ${result.error.message}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toBe(recorded.length);
  });
});
