/**
 * Records one history of each workflow and branch that running exports depend on, as replay
 * fixtures (`npm run record-histories`, on the real stack; see docs/changing-workflow-code.md). `workflow-replay.test.ts` replays them against today's workflow code in `npm test`.
 * Record a new fixture when a workflow gains a branch; never re-record one to make replay pass:
 * a fixture that exists is kept (it is the history an earlier release wrote), so a run records
 * only the new ones.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { REPLAY_FIXTURE_KEY } from '../support/fixture-key';
import { generatePopulation } from '../../src/generate/population';
import { findBinary } from '../../src/process/find-binary';
import { testEnvironment } from '../harness/environment';
import { uniqueTenant } from '../support/database';
import { submit } from '../support/submissions';
import { kickoffHeaders, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';
import { waitFor } from '../support/wait';
import { submissionJobId } from '../../src/http/routes/bulk-submit';
import type { SubmitOptions } from '../support/submissions';

const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'histories');

/** Stack traces and worker identities say where the recording ran, which replay never reads. */
const withoutMachineDetails = (key: string, value: unknown) => (key === 'stackTrace' ? undefined : key === 'identity' ? 'recorder' : value);

/** A provider for `$bulk-submit`: `/m<N>.json` lists `/p<N>.ndjson` (two Patients each); `/held.ndjson` answers when `release` is called. */
const submitter = { system: 'https://provider.test/ids', value: 'recorder' };
const recordingTenant = uniqueTenant('replay');
let filesUrl = '';
let releaseHeld: () => void = () => undefined;
const held = new Promise<void>((resolve) => (releaseHeld = resolve));
function providerFiles(url: string, res: ServerResponse): void {
  const manifest = /^\/(m\d+|held)\.json$/.exec(url);
  if (manifest) {
    const file = manifest[1] === 'held' ? 'held' : `p${manifest[1].slice(1)}`;
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ transactionTime: new Date().toISOString(), requiresAccessToken: false, output: [{ type: 'Patient', url: `${filesUrl}/${file}.ndjson` }], error: [] }));
    return;
  }
  const data = /^\/(p\d+|held)\.ndjson$/.exec(url);
  if (!data) return void res.writeHead(404).end();
  const body = [0, 1].map((i) => JSON.stringify({ resourceType: 'Patient', id: `sub-${data[1]}-${i}`, gender: 'female' })).join('\n') + '\n';
  if (data[1] === 'held') void held.then(() => res.end(body));
  else res.end(body);
}

describe('recording workflow histories for replay', () => {
  let stack: ExportStack;
  let files: Server;
  let groupId: string;
  let patientId: string;

  beforeAll(async () => {
    // Short retention, so exports run to their end (files expired and deleted) within the recording.
    files = createServer((req, res) => providerFiles(req.url ?? '', res));
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    stack = await startExportStack({
      tenant: recordingTenant,
      settings: { retentionMs: 2_000, manifestPageFiles: 2, maxPartResources: 50, heartbeatTimeoutMs: 5_000 },
      asyncSyncWaitMs: 0,
      payloadKeys: [REPLAY_FIXTURE_KEY],
      submitters: [{ tenant: recordingTenant, system: submitter.system, value: submitter.value, allowedUrls: [`${filesUrl}/`] }],
    });
    const population = [...generatePopulation({ patients: 3, seed: 31 })];
    groupId = population.find((r) => r.resourceType === 'Group')!.id!;
    patientId = population.find((r) => r.resourceType === 'Patient')!.id!;
    await stack.store.write(population.map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker((real) => ({
      ...real,
      // `_type=Device` marks the export whose planning fails for good (the failed branch).
      planExport: async (input) => {
        if (input.types?.includes('Device')) throw ApplicationFailure.nonRetryable('planning refused (a recorded failure)', 'RecordedFailure');
        return real.planExport(input);
      },
      // `_typeFilter=MedicationRequest?status=active` partitions fail for good (a partition failure:
      // siblings cancelled, files deleted); `Immunization?status=completed` ones run until
      // cancelled, so such a failure has a sibling to cancel. Other exports run as they are.
      exportPartition: async (input) => {
        if (input.filters?.includes('status=active') && input.partition.type === 'MedicationRequest') throw ApplicationFailure.nonRetryable('partition refused (a recorded failure)', 'RecordedFailure');
        if (input.filters?.includes('status=completed') && input.partition.type === 'Immunization') {
          const context = Context.current();
          const beat = setInterval(() => context.heartbeat(), 200);
          try {
            await context.cancelled;
          } finally {
            clearInterval(beat);
          }
        }
        return real.exportPartition(input);
      },
    }));
  });
  afterAll(async () => {
    await stack.close();
    files?.close();
  });

  async function save(name: string, workflowId: string): Promise<void> {
    if (existsSync(path.join(FIXTURES, `${name}.json`))) return; // recorded by an earlier release: kept as it is
    const handle = stack.client.workflow.getHandle(workflowId);
    await waitFor(async () => (await handle.describe()).status.name !== 'RUNNING', 60_000, `${name} to close`);
    const description = await handle.describe();
    // The history as `temporal workflow show --output json` writes it: the format historyFromJSON reads.
    const history = execFileSync(findBinary('temporal', undefined, 'TEMPORAL_CLI_PATH'), [
      'workflow', 'show', '--workflow-id', workflowId, '--output', 'json',
      '--address', testEnvironment.temporalAddress, '--namespace', testEnvironment.temporalNamespace,
    ], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    mkdirSync(FIXTURES, { recursive: true });
    writeFileSync(
      path.join(FIXTURES, `${name}.json`),
      `${JSON.stringify({ workflowType: description.type, status: description.status.name, workflowId, history: JSON.parse(history) }, withoutMachineDetails, 1)}\n`,
    );
  }

  const kickOff = async (pathAndQuery: string, headers: Record<string, string> = kickoffHeaders) => {
    const res = await fetch(`${stack.fhir}${pathAndQuery}`, { headers });
    if (res.status !== 202) throw new Error(`${pathAndQuery} answered ${res.status}: ${await res.text()}`);
    const statusUrl = res.headers.get('content-location')!;
    return { statusUrl, id: statusUrl.split('/').pop()! };
  };

  it('records bulkExport: completed and expired', async () => {
    const { statusUrl, id } = await kickOff('/$export');
    await pollUntilDone(statusUrl);
    await save('bulkExport-completed', id);
  });

  it('records bulkExport: partial manifests', async () => {
    const { statusUrl, id } = await kickOff('/$export?allowPartialManifests=true');
    await pollUntilDone(statusUrl);
    await save('bulkExport-partial-manifests', id);
  });

  it('records bulkExport: a Group organized by patient (blocks)', async () => {
    const { statusUrl, id } = await kickOff(`/Group/${groupId}/$export?organizeOutputBy=Patient`);
    await pollUntilDone(statusUrl);
    await save('bulkExport-blocks', id);
  });

  it('records bulkExport: cancelled', async () => {
    const { statusUrl, id } = await kickOff('/$export');
    expect((await fetch(statusUrl, { method: 'DELETE' })).status).toBe(202);
    await save('bulkExport-cancelled', id);
  });

  it('records bulkExport: failed', async () => {
    const { id } = await kickOff('/$export?_type=Device');
    await save('bulkExport-failed', id);
  });

  it('records bulkExport: _since with deletions', async () => {
    const since = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await stack.store.write([{ op: 'delete', resourceType: 'Patient', id: patientId }]);
    const { statusUrl, id } = await kickOff(`/$export?_since=${encodeURIComponent(since)}`);
    await pollUntilDone(statusUrl);
    await save('bulkExport-since-deletions', id);
  });

  it('records bulkExport: lenient handling with an error file', async () => {
    const { statusUrl, id } = await kickOff('/$export?_type=Patient&unknownParameter=1', { ...kickoffHeaders, Prefer: 'respond-async, handling=lenient' });
    const { manifest } = await pollUntilDone(statusUrl);
    expect(manifest.error).toHaveLength(1);
    await save('bulkExport-lenient-errors', id);
  });

  it('records bulkExport: a partition that fails, its sibling cancelled and the files deleted', async () => {
    const { id } = await kickOff(`/$export?_type=Immunization,MedicationRequest&_typeFilter=${encodeURIComponent('Immunization?status=completed')}&_typeFilter=${encodeURIComponent('MedicationRequest?status=active')}`);
    await save('bulkExport-partition-failed', id);
  });

  const viewKickOff = async (views: Record<string, unknown>[], format = 'ndjson') => {
    const res = await fetch(`${stack.fhir}/$sql-export`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json', Prefer: 'respond-async' },
      body: JSON.stringify({
        resourceType: 'Parameters',
        parameter: [
          ...views.map((view, i) => ({ name: 'subject', part: [{ name: 'name', valueString: `view${i}` }, { name: 'subjectResource', resource: view }] })),
          { name: '_format', valueCode: format },
        ],
      }),
    });
    if (res.status !== 202) throw new Error(`$sql-export answered ${res.status}: ${await res.text()}`);
    const statusUrl = res.headers.get('content-location')!;
    return { statusUrl, id: statusUrl.split('/').pop()! };
  };
  const patientView = { resourceType: 'ViewDefinition', resource: 'Patient', select: [{ column: [{ name: 'id', path: 'id' }, { name: 'gender', path: 'gender' }] }] };
  const observationView = { resourceType: 'ViewDefinition', resource: 'Observation', select: [{ column: [{ name: 'id', path: 'id' }, { name: 'code', path: 'code.coding.first().code' }] }] };

  it('records viewExport: two views, completed and expired', async () => {
    const { id } = await viewKickOff([patientView, observationView], 'csv');
    await save('viewExport-completed', id);
  });

  it('records viewExport: cancelled', async () => {
    const { statusUrl, id } = await viewKickOff([observationView]);
    expect((await fetch(statusUrl, { method: 'DELETE' })).status).toBe(202);
    await save('viewExport-cancelled', id);
  });

  it('records viewExport: failed (a view that cannot be evaluated on the data)', async () => {
    const { id } = await viewKickOff([{ ...patientView, select: [{ column: [{ name: 'two', path: 'id | gender' }] }] }]);
    await save('viewExport-failed', id);
  });

  it('records asyncRequest: cancelled', async () => {
    const res = await fetch(`${stack.fhir}/Patient`, { headers: { Prefer: 'respond-async' } });
    const statusUrl = res.headers.get('content-location')!;
    expect((await fetch(statusUrl, { method: 'DELETE' })).status).toBe(202);
    await save('asyncRequest-cancelled', statusUrl.split('/').pop()!);
  });

  it('records asyncRequest: a search answered asynchronously', async () => {
    const res = await fetch(`${stack.fhir}/Patient`, { headers: { Prefer: 'respond-async' } });
    expect(res.status).toBe(202);
    const id = res.headers.get('content-location')!.split('/').pop()!;
    await save('asyncRequest-completed', id);
  });

  const admin = (method: string, suffix: string, body?: unknown) =>
    fetch(`${stack.url}/admin/schedules${suffix}`, { method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  /** The id of the newest run of a schedule: its scheduledExport workflow. */
  const runOf = async (scheduleId: string): Promise<string> => {
    let run: string | undefined;
    await waitFor(async () => {
      for await (const execution of stack.client.workflow.list({ query: `WorkflowType = 'scheduledExport' AND TaskQueue = '${stack.taskQueue}' AND BulkflowScheduleId = '${scheduleId}'` })) run = execution.workflowId;
      return run !== undefined;
    }, 30_000, `a run of ${scheduleId}`);
    return run!;
  };

  it('records scheduledExport: a run whose export fails', async () => {
    expect((await admin('POST', '', { id: 'recorded-failing', every: '1h', paused: true, parameters: { _type: 'Device' } })).status).toBe(201);
    expect((await admin('POST', '/recorded-failing/trigger')).status).toBeLessThan(300);
    await save('scheduledExport-failed', await runOf('recorded-failing'));
    expect((await admin('DELETE', '/recorded-failing')).status).toBeLessThan(300);
  });

  it('records scheduledExport: a run cancelled while its export runs', async () => {
    expect((await admin('POST', '', { id: 'recorded-cancelled', every: '1h', paused: true, parameters: { _type: 'Immunization', _typeFilter: 'Immunization?status=completed' } })).status).toBe(201);
    expect((await admin('POST', '/recorded-cancelled/trigger')).status).toBeLessThan(300);
    const run = await runOf('recorded-cancelled');
    await stack.client.workflow.getHandle(run).cancel();
    await save('scheduledExport-cancelled', run);
    expect((await admin('DELETE', '/recorded-cancelled')).status).toBeLessThan(300);
  });

  it('records scheduledExport and deliverWebhook: one triggered run with a webhook', async () => {
    const received: string[] = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        received.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
      expect((await admin('POST', '', { id: 'recorded', every: '1h', webhook: url })).status).toBe(201);
      expect((await admin('POST', '/recorded/trigger')).status).toBeLessThan(300);
      await waitFor(async () => received.length > 0, 60_000, 'the webhook');
      const find = async (type: string) => {
        for await (const execution of stack.client.workflow.list({ query: `WorkflowType = '${type}' AND TaskQueue = '${stack.taskQueue}'` })) return execution.workflowId;
        return undefined;
      };
      let run: string | undefined;
      let delivery: string | undefined;
      await waitFor(async () => Boolean((run = await find('scheduledExport')) && (delivery = await find('deliverWebhook'))), 30_000, 'the run to be listed');
      await save('scheduledExport-completed', run!);
      await save('deliverWebhook-completed', delivery!);
      expect((await admin('DELETE', '/recorded')).status).toBeLessThan(300);
    } finally {
      hook.close();
    }
  });
  /** The scheduledViewExport runs of a lake schedule, oldest first. */
  const lakeRuns = async (scheduleId: string): Promise<string[]> => {
    const found: Array<{ id: string; at: number }> = [];
    for await (const execution of stack.client.workflow.list({ query: `WorkflowType = 'scheduledViewExport' AND TaskQueue = '${stack.taskQueue}' AND BulkflowScheduleId = '${scheduleId}'` })) found.push({ id: execution.workflowId, at: execution.startTime.getTime() });
    return found.sort((a, b) => a.at - b.at).map((f) => f.id);
  };
  const triggerLakeRun = async (scheduleId: string, before: number): Promise<string> => {
    expect((await admin('POST', `/${scheduleId}/trigger`)).status).toBeLessThan(300);
    let runs: string[] = [];
    await waitFor(async () => (runs = await lakeRuns(scheduleId)).length > before, 30_000, `run ${before + 1} of ${scheduleId}`);
    const run = runs[before];
    await waitFor(async () => (await stack.client.workflow.getHandle(run).describe()).status.name !== 'RUNNING', 60_000, `run ${before + 1} of ${scheduleId} to end`);
    return run;
  };

  it('records scheduledViewExport: a full run, an incremental run, and a run whose stored view changed', async () => {
    const view = { resourceType: 'ViewDefinition', id: 'recorded-lake-view', name: 'patients', resource: 'Patient', status: 'active', select: [{ column: [{ name: 'id', path: 'getResourceKey()' }, { name: 'gender', path: 'gender' }] }] };
    await stack.store.write([{ op: 'put', resource: view as never }]);
    const created = await admin('POST', '', {
      id: 'recorded-lake',
      cron: '0 0 1 1 *',
      destination: 'lake/recorded',
      sqlExport: { resourceType: 'Parameters', parameter: [{ name: 'subject', part: [{ name: 'name', valueString: 'patients' }, { name: 'subjectReference', valueReference: { reference: 'ViewDefinition/recorded-lake-view' } }] }] },
    });
    expect(created.status).toBe(201);
    await save('scheduledViewExport-full', await triggerLakeRun('recorded-lake', 0));
    await stack.store.write([{ op: 'put', resource: { resourceType: 'Patient', id: 'recorded-lake-new', gender: 'other' } }]);
    await save('scheduledViewExport-incremental', await triggerLakeRun('recorded-lake', 1));
    await stack.store.write([{ op: 'put', resource: { ...view, select: [{ column: [...view.select[0].column, { name: 'birth', path: 'birthDate' }] }] } as never }]);
    const failed = await triggerLakeRun('recorded-lake', 2);
    expect((await stack.client.workflow.getHandle(failed).describe()).status.name).toBe('FAILED');
    await save('scheduledViewExport-view-changed', failed);
    expect((await admin('DELETE', '/recorded-lake')).status).toBeLessThan(300);
  });

  const submissionOf = (submissionId: string) => submissionJobId(recordingTenant, submitter, submissionId);
  const accepted = async (options: Omit<SubmitOptions, 'submitter'>) => {
    const res = await submit(stack.fhir, { submitter, ...options });
    if (res.status !== 200) throw new Error(`$bulk-submit answered ${res.status}: ${await res.text()}`);
  };

  it('records bulkSubmission: open, several manifests, then completed and expired', async () => {
    await accepted({ submissionId: 'rec-many', manifestUrl: `${filesUrl}/m1.json` });
    await accepted({ submissionId: 'rec-many', manifestUrl: `${filesUrl}/m2.json` });
    await accepted({ submissionId: 'rec-many', manifestUrl: `${filesUrl}/m3.json`, status: 'completed' });
    await save('bulkSubmission-completed', submissionOf('rec-many'));
  });

  it('records bulkSubmission: a replacing manifest', async () => {
    await accepted({ submissionId: 'rec-replace', manifestUrl: `${filesUrl}/m4.json` });
    await accepted({ submissionId: 'rec-replace', manifestUrl: `${filesUrl}/m5.json`, replacesManifestUrl: `${filesUrl}/m4.json`, status: 'completed' });
    await save('bulkSubmission-replaced', submissionOf('rec-replace'));
  });

  it('records bulkSubmission: stopped while a file loads', async () => {
    await accepted({ submissionId: 'rec-stopped', manifestUrl: `${filesUrl}/held.json` });
    await waitFor(async () => (await stack.client.workflow.getHandle(submissionOf('rec-stopped')).query<{ manifests: Array<{ state: string }> }>('submissionStatus')).manifests[0]?.state === 'loading', 30_000, 'the held file to load');
    await accepted({ submissionId: 'rec-stopped', status: 'stopped' });
    releaseHeld();
    await save('bulkSubmission-stopped', submissionOf('rec-stopped'));
  });

  it('records bulkSubmission: an $import (pulled and closed at once)', async () => {
    const res = await fetch(`${stack.fhir}/$import`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json', Prefer: 'respond-async' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'exportUrl', valueUrl: `${filesUrl}/m6.json` }, { name: 'exportType', valueCode: 'static' }] }),
    });
    if (res.status !== 202) throw new Error(`$import answered ${res.status}: ${await res.text()}`);
    await save('bulkSubmission-import', res.headers.get('content-location')!.split('/').pop()!);
  });
});
