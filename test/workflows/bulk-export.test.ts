/**
 * The `bulkExport`, `viewExport` and `scheduledExport` workflows alone: the production worker (its bundle, both task
 * queues) on the test harness's Temporal server, every activity a stub that records its calls.
 * No store, no files: each case runs in well under a second, so a change to workflow logic gets
 * its answer here; the full-stack tests keep one end-to-end case per feature.
 */
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Activities } from '../../activities';
import type { ExportInput, ExportPartitionInput, ExportPartitionResult, ExportPlan, ExportStatus, PlannedPartition } from '../../src/contracts/bulk-export';
import type { SqlSubjectInput, ViewExportInput, ViewExportStatus, ViewPartitionInput } from '../../src/contracts/view-export';
import { createExportWorker, type ExportWorker } from '../../src/temporal/worker';
import { bulkExport, statusQuery } from '../../workflows/bulk-export';
import { scheduledExport } from '../../workflows/scheduled-export';
import type { ScheduledExportInput } from '../../src/contracts/scheduled-export';
import { viewExport, viewExportStatusQuery } from '../../workflows/view-export';
import { exportStartOptions, viewExportStartOptions } from '../../workflows/visibility';
import { testEnvironment } from '../harness/environment';

const tuning = { partitionSize: 100, maxParallelPartitions: 2, maxPartResources: 100, maxPartBytes: 1 << 20, retentionMs: 60_000, heartbeatTimeoutMs: 500, manifestPageFiles: 100 }; // a short heartbeat timeout: cancellations reach the stubs within its throttle

/** What one test's stubs do, and what they saw. */
interface Script {
  plan?: (input: unknown) => Promise<ExportPlan>;
  partition?: (input: ExportPartitionInput) => Promise<ExportPartitionResult>;
  calls: Array<{ name: string; input: unknown; at: number }>;
  running: number;
  mostAtOnce: number;
}
const scripts = new Map<string, Script>();
/** A scheduled run's ledger: what beginRun answers, and what completeRun's compare-and-set decides. */
const runs = new Map<string, { start: { exportId: string; since?: string; watermark?: string }; outcome: 'completed' | 'superseded'; calls: Array<{ name: string; input: unknown }> }>();
const scriptOf = (input: unknown) => scripts.get((input as { exportId?: string; location?: { exportId: string } }).exportId ?? (input as { location: { exportId: string } }).location.exportId)!;

/** Waits, heartbeating, until the activity is cancelled (a stub that never finishes on its own). */
async function untilCancelled(): Promise<never> {
  const context = Context.current();
  for (;;) {
    context.heartbeat();
    await context.sleep(50); // throws the cancellation once it arrives
  }
}

const partitionOf = (type: string, partition: number, deletions = false): PlannedPartition => ({ type, partition, ...(deletions ? { deletions } : {}) }) as PlannedPartition;
const partResult = (input: { partition: PlannedPartition; location: { exportId: string } }, count: number): ExportPartitionResult =>
  ({
    type: input.partition.type,
    partition: input.partition.partition,
    ...(input.partition.deletions ? { deletions: true } : {}),
    parts: [{ type: input.partition.type, key: `${input.location.exportId}/${input.partition.type}-${input.partition.partition}${input.partition.deletions ? '-deleted' : ''}.ndjson`, count, bytes: count * 10 }],
  }) as ExportPartitionResult;

describe('export workflows with stubbed activities', () => {
  let connection: Connection;
  let client: Client;
  let worker: ExportWorker;
  let running: Promise<void>;
  const taskQueue = `workflows-${randomUUID()}`;

  beforeAll(async () => {
    connection = await Connection.connect({ address: testEnvironment.temporalAddress });
    client = new Client({ connection, namespace: testEnvironment.temporalNamespace });
    const record = (name: string, input: unknown) => {
      const script = scriptOf(input);
      script.calls.push({ name, input, at: Date.now() });
      return script;
    };
    const stubs = {
      planExport: async (input: { exportId: string }) => (record('planExport', input).plan ?? (async () => ({ transactionTime: new Date().toISOString(), totals: {}, deletedTotals: {}, partitions: [] })))(input),
      exportPartition: async (input: ExportPartitionInput) => {
        const script = record('exportPartition', input);
        script.running++;
        script.mostAtOnce = Math.max(script.mostAtOnce, script.running);
        try {
          return await (script.partition ?? (async (i: ExportPartitionInput) => partResult(i, 5)))(input);
        } finally {
          script.running--;
        }
      },
      writeErrorFile: async (input: { exportId: string; issues: unknown[] }) => {
        record('writeErrorFile', input);
        return { type: 'OperationOutcome', key: `${input.exportId}/error.ndjson`, count: input.issues.length, bytes: 1 };
      },
      deleteExportFiles: async (input: { exportId: string }) => {
        record('deleteExportFiles', input);
        return 0;
      },
      planViewExport: async (input: { exportId: string; types: string[] }) => {
        record('planViewExport', input);
        return { transactionTime: new Date().toISOString(), totals: Object.fromEntries(input.types.map((t) => [t, 10])), partitions: input.types.flatMap((type) => [partitionOf(type, 0), partitionOf(type, 1)]) };
      },
      exportViewPartition: async (input: ViewPartitionInput) => {
        record('exportViewPartition', input);
        return { view: input.view.name, partition: input.partition.partition, resources: 10, parts: [{ type: input.view.name, key: `${input.view.name}-${input.partition.partition}`, count: 3, bytes: 30 }] };
      },
      beginScheduledRun: async (input: { scheduleId: string }) => {
        const run = runs.get(input.scheduleId)!;
        run.calls.push({ name: 'beginScheduledRun', input });
        scripts.set(run.start.exportId, { calls: [], running: 0, mostAtOnce: 0, plan: async () => ({ transactionTime: '2026-02-02T00:00:00.000Z', totals: { Patient: 3 }, deletedTotals: {}, partitions: [partitionOf('Patient', 0)] }) });
        return run.start;
      },
      completeScheduledRun: async (input: { scheduleId: string; watermark?: string }) => {
        const run = runs.get(input.scheduleId)!;
        run.calls.push({ name: 'completeScheduledRun', input });
        return { state: run.outcome, manifest: { transactionTime: '2026-02-02T00:00:00.000Z', output: [] } };
      },
      endScheduledRun: async (input: { exportId: string }) => {
        for (const run of runs.values()) if (run.start.exportId === input.exportId) run.calls.push({ name: 'endScheduledRun', input });
      },
      postWebhook: async (input: { body: { scheduleId: string } }) => {
        runs.get(input.body.scheduleId)!.calls.push({ name: 'postWebhook', input });
      },
      exportSqlSubject: async (input: SqlSubjectInput) => {
        record('exportSqlSubject', input);
        return { name: input.subject.name, rows: 7, tableRows: { obs: 20 }, parts: [{ type: input.subject.name, key: `${input.subject.name}-0`, count: 7, bytes: 70 }], timings: { materialiseMs: 1, sqlMs: 1, writeMs: 1 } };
      },
    };
    const nativeConnection = await NativeConnection.connect({ address: testEnvironment.temporalAddress });
    worker = await createExportWorker({
      connection: nativeConnection,
      config: { temporalNamespace: testEnvironment.temporalNamespace, temporalTaskQueue: taskQueue, workerMaxConcurrentActivities: 8 },
      dependencies: { pool: undefined as never, output: undefined as never },
      payloadKeys: 'unencrypted',
      wrapActivities: (real) => ({ ...real, ...stubs }) as unknown as Activities,
    });
    running = worker.run();
  });
  afterAll(async () => {
    worker.shutdown();
    await running;
    await connection.close();
  });

  /** Starts a bulk export whose stubs follow `script`. */
  async function startExport(script: Partial<Script>, overrides: Partial<ExportInput> = {}) {
    const exportId = randomUUID().replace(/-/g, '').slice(0, 22);
    const full: Script = { calls: [], running: 0, mostAtOnce: 0, ...script };
    scripts.set(exportId, full);
    const input: ExportInput = { exportId, level: 'system', owner: 'test', request: 'http://x/$export', window: { tenant: 'wf' }, lenientIssues: [], tuning, ...overrides };
    const handle = await client.workflow.start(bulkExport, { taskQueue, workflowId: exportId, args: [input], ...exportStartOptions(input) });
    return { handle, script: full, exportId };
  }
  const until = async (check: () => boolean | Promise<boolean>, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const completed = async (handle: { query: (q: typeof statusQuery) => Promise<ExportStatus> }) => {
    let status: ExportStatus | undefined;
    await until(async () => (status = await handle.query(statusQuery)).phase === 'completed');
    return status!;
  };
  const named = (script: Script, name: string) => script.calls.filter((c) => c.name === name);

  it('plans, fans out at most maxParallelPartitions at a time, and lists files by type then partition, deletions apart', async () => {
    const partitions = [partitionOf('Patient', 1), partitionOf('Observation', 0), partitionOf('Patient', 0), partitionOf('Observation', 1), partitionOf('Observation', 2), partitionOf('Patient', 0, true)];
    const { handle, script } = await startExport({
      plan: async () => ({ transactionTime: '2026-01-01T00:00:00.000Z', totals: { Patient: 20, Observation: 30 }, deletedTotals: { Patient: 1 }, partitions }),
      partition: async (input) => {
        await new Promise((resolve) => setTimeout(resolve, 30 * (3 - (input.partition.partition % 3)))); // finish out of order
        return partResult(input, input.partition.deletions ? 1 : 10);
      },
    });
    const status = await completed(handle);
    expect(named(script, 'exportPartition')).toHaveLength(6);
    expect(script.mostAtOnce).toBe(2);
    expect(status.output.map((p) => p.key.split('/')[1])).toEqual(['Observation-0.ndjson', 'Observation-1.ndjson', 'Observation-2.ndjson', 'Patient-0.ndjson', 'Patient-1.ndjson']);
    expect(status.deleted.map((p) => p.key.split('/')[1])).toEqual(['Patient-0-deleted.ndjson']);
    expect(status.types).toEqual({ Patient: { total: 20, exported: 20 }, Observation: { total: 30, exported: 30 } });
    expect(status.transactionTime).toBe('2026-01-01T00:00:00.000Z');
    // Every partition reads the planned snapshot.
    for (const call of named(script, 'exportPartition')) expect((call.input as ExportPartitionInput).window.transactionTime).toBe('2026-01-01T00:00:00.000Z');
    await handle.cancel();
  });

  it('keeps the files until they expire, then deletes them and ends', async () => {
    const { handle, script } = await startExport({ plan: async () => ({ transactionTime: new Date().toISOString(), totals: { Patient: 5 }, deletedTotals: {}, partitions: [partitionOf('Patient', 0)] }) }, { tuning: { ...tuning, retentionMs: 200 } });
    const status = await completed(handle);
    await handle.result();
    const deleted = named(script, 'deleteExportFiles');
    expect(deleted).toHaveLength(1);
    expect(deleted[0].at - Date.parse(status.completedAt!)).toBeGreaterThanOrEqual(180);
    expect(status.expiresAt).toBe(new Date(Date.parse(status.completedAt!) + 200).toISOString());
  });

  it.each([
    ['planning', { plan: untilCancelled }],
    ['exporting', { plan: async () => ({ transactionTime: new Date().toISOString(), totals: { Patient: 5 }, deletedTotals: {}, partitions: [partitionOf('Patient', 0), partitionOf('Patient', 1)] }), partition: untilCancelled }],
    ['retention', {}],
  ] as Array<[string, Partial<Script>]>)('ends a DELETE during %s as cancelled, with the files deleted once', async (phase, script) => {
    const started = await startExport(script);
    if (phase === 'planning') await until(() => named(started.script, 'planExport').length > 0);
    if (phase === 'exporting') await until(() => started.script.running === 2);
    if (phase === 'retention') await completed(started.handle);
    await started.handle.cancel();
    await expect(started.handle.result()).rejects.toThrow();
    expect((await started.handle.describe()).status.name).toBe('CANCELLED');
    expect(named(started.script, 'deleteExportFiles')).toHaveLength(1);
  });

  it('fails at once on a partition that cannot be exported, deleting the files; siblings are cancelled', async () => {
    const { handle, script } = await startExport({
      plan: async () => ({ transactionTime: new Date().toISOString(), totals: { Patient: 5 }, deletedTotals: {}, partitions: [partitionOf('Patient', 0), partitionOf('Patient', 1)] }),
      partition: async (input) => {
        if (input.partition.partition === 0) throw ApplicationFailure.nonRetryable('Patient/x has no body', 'BadResource');
        return untilCancelled();
      },
    });
    const failure = await handle.result().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const cause = (failure as WorkflowFailedError).cause as { message?: string; cause?: { message?: string } } | undefined;
    expect(String(cause?.cause?.message ?? cause?.message)).toContain('Patient/x has no body');
    expect(named(script, 'exportPartition').filter((c) => (c.input as ExportPartitionInput).partition.partition === 0)).toHaveLength(1); // not retried
    expect(named(script, 'deleteExportFiles')).toHaveLength(1);
  });

  it('under lenient handling, reports the kick-off issues and then each partition\'s, in partition order, in one error file', async () => {
    const issue = (diagnostics: string) => ({ severity: 'warning' as const, code: 'processing', diagnostics });
    const { handle, script } = await startExport(
      {
        plan: async () => ({ transactionTime: new Date().toISOString(), totals: { Patient: 5 }, deletedTotals: {}, partitions: [partitionOf('Patient', 0), partitionOf('Patient', 1)] }),
        partition: async (input) => {
          expect(input.lenient).toBe(true);
          if (input.partition.partition === 0) await new Promise((resolve) => setTimeout(resolve, 100)); // finishes second
          return { ...partResult(input, 4), issues: [issue(`left out in ${input.partition.partition}`)] };
        },
      },
      { lenient: true, lenientIssues: [issue('unknown _elements')] as never },
    );
    const status = await completed(handle);
    const written = named(script, 'writeErrorFile');
    expect(written).toHaveLength(1);
    expect((written[0].input as { issues: Array<{ diagnostics: string }> }).issues.map((i) => i.diagnostics)).toEqual(['unknown _elements', 'left out in 0', 'left out in 1']);
    expect(status.error).toHaveLength(1);
    await handle.cancel();
  });

  it('runs a view export\'s views per partition and each SQL subject once, all at one snapshot, and lists each output', async () => {
    const exportId = randomUUID().replace(/-/g, '').slice(0, 22);
    const script: Script = { calls: [], running: 0, mostAtOnce: 0 };
    scripts.set(exportId, script);
    const view = (name: string, resource: string) => ({ name, resource, definition: { resourceType: 'ViewDefinition', resource } });
    const input: ViewExportInput = {
      exportId,
      level: 'system',
      owner: 'test',
      request: 'http://x/$sql-export',
      window: { tenant: 'wf' },
      views: [view('patients', 'Patient'), view('observations', 'Observation')],
      sqlSubjects: [{ name: 'counts', sql: 'SELECT 1', parameters: [], views: [], sqlViews: [] }],
      format: 'ndjson',
      header: true,
      tuning,
    };
    const handle = await client.workflow.start(viewExport, { taskQueue, workflowId: exportId, args: [input], ...viewExportStartOptions(input) });
    let status: ViewExportStatus | undefined;
    await until(async () => (status = await handle.query(viewExportStatusQuery)).phase === 'completed');
    expect(named(script, 'planViewExport').map((c) => (c.input as { types: string[] }).types)).toEqual([['Patient', 'Observation']]);
    expect(named(script, 'exportViewPartition')).toHaveLength(4);
    expect(named(script, 'exportSqlSubject')).toHaveLength(1);
    const snapshots = new Set([...named(script, 'exportViewPartition'), ...named(script, 'exportSqlSubject')].map((c) => (c.input as { window: { transactionTime: string } }).window.transactionTime));
    expect(snapshots.size).toBe(1);
    expect(Object.fromEntries(Object.entries(status!.views).map(([name, v]) => [name, { rows: v.rows, parts: v.parts.map((p) => p.key) }]))).toEqual({
      patients: { rows: 6, parts: ['patients-0', 'patients-1'] },
      observations: { rows: 6, parts: ['observations-0', 'observations-1'] },
      counts: { rows: 7, parts: ['counts-0'] },
    });
    expect(status!.views.counts.sql).toEqual({ tableRows: { obs: 20 }, timings: { materialiseMs: 1, sqlMs: 1, writeMs: 1 } });
    expect(status!.partitionsTotal).toBe(5);
    await handle.cancel();
  });

  it.each(['completed', 'superseded'] as const)('carries a scheduled run from its watermark to its compare-and-set (%s): the export reads from the watermark, only a completed run posts its webhook', async (outcome) => {
    const scheduleId = `s-${randomUUID().slice(0, 8)}`;
    const exportId = randomUUID().replace(/-/g, '').slice(0, 22);
    const watermark = '2026-01-15T00:00:00.000Z';
    runs.set(scheduleId, { start: { exportId, since: watermark, watermark }, outcome, calls: [] });
    const input: ScheduledExportInput = {
      scheduleId,
      tenant: 'wf',
      owner: 'test',
      request: 'http://x/fhir/$export?_type=Patient',
      export: { level: 'system', window: { tenant: 'wf' }, types: ['Patient'], lenientIssues: [], tuning },
      outputPrefix: `schedules/${scheduleId}`,
      fhirBaseUrl: 'http://x/fhir',
      webhookUrl: 'http://hooks.example/done',
      definition: { id: scheduleId, every: '1h' } as never,
    };
    const result = await client.workflow.execute(scheduledExport, { taskQueue, workflowId: `${scheduleId}-run`, args: [input] });
    const calls = runs.get(scheduleId)!.calls;
    expect(result).toEqual({ exportId, since: watermark, transactionTime: '2026-02-02T00:00:00.000Z', state: outcome });
    const export_ = (named(scripts.get(exportId)!, 'planExport')[0].input as { window: { since?: string } }).window;
    expect(export_.since).toBe(watermark); // the run exports from where the chain stands
    const complete = calls.find((c) => c.name === 'completeScheduledRun')!.input as { watermark?: string; exportId: string };
    expect(complete).toMatchObject({ watermark, exportId }); // the compare-and-set names the watermark it started from
    await until(() => outcome === 'superseded' || calls.some((c) => c.name === 'postWebhook'));
    if (outcome === 'superseded') await new Promise((resolve) => setTimeout(resolve, 300));
    expect(calls.filter((c) => c.name === 'postWebhook')).toHaveLength(outcome === 'completed' ? 1 : 0);
    expect(calls.some((c) => c.name === 'endScheduledRun')).toBe(false);
    await client.workflow.getHandle(exportId).cancel(); // the export outlives its run until it expires
  });
});
