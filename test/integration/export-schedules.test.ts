import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { scheduleCommand } from '../../src/commands/schedule';
import { generatePopulation } from '../../src/generate/population';
import { readText } from '../../src/output/output-store';
import type { ResourceStore } from '../../src/store/resource-store';
import { downloadAll, downloadDeleted, startExportStack, type CompletedExport, type ExportStack } from '../support/export-stack';
import { scheduleAdmin } from '../support/schedule-admin';
import { waitFor } from '../support/wait';

interface RunView {
  exportId: string;
  startedAt: string;
  since?: string;
  transactionTime?: string;
  state: string;
  manifest?: CompletedExport['manifest'];
}
interface ScheduleView {
  id: string;
  paused: boolean;
  watermark?: string;
  latest?: { exportId: string; manifest: CompletedExport['manifest'] };
  runs?: RunView[];
  running: string[];
  nextRunTimes: string[];
}

const json = { 'Content-Type': 'application/json' };

async function admin(stack: ExportStack, method: string, path: string, body?: unknown): Promise<Response> {
  return scheduleAdmin(`${stack.url}/admin/schedules`).call(method, path, body);
}

const read = (stack: ExportStack, id: string) => scheduleAdmin(`${stack.url}/admin/schedules`).read<ScheduleView>(id);
const trigger = (stack: ExportStack, id: string) => scheduleAdmin(`${stack.url}/admin/schedules`).trigger(id);

async function seed(store: ResourceStore, patients: number, seedValue: number) {
  const resources = [...generatePopulation({ patients, seed: seedValue })];
  for (let i = 0; i < resources.length; i += 1000) await store.write(resources.slice(i, i + 1000).map((resource) => ({ op: 'put' as const, resource })));
  return resources;
}

/** What the store held at `at`: `Type/id/versionId` of every live version current then. */
async function stateAt(stack: ExportStack, at: string): Promise<string[]> {
  const { rows } = await stack.pool.query<{ key: string }>(
    `SELECT resource_type || '/' || id || '/' || version_id AS key FROM resource_versions
      WHERE tenant = $1 AND last_updated <= $2 AND (superseded_at IS NULL OR superseded_at > $2) AND NOT deleted`,
    [stack.store.tenant, at],
  );
  return rows.map((r) => r.key).sort();
}

/** Creates, updates and deletes Observations until stopped; returns how many of each it did. */
function startWriter(store: ResourceStore, patientIds: string[]) {
  let stopped = false;
  const live: string[] = [];
  const done = { created: 0, updated: 0, deleted: 0 };
  let n = 0;
  const loop = (async () => {
    while (!stopped) {
      n++;
      const id = `w-${n}`;
      const patient = patientIds[n % patientIds.length];
      const obs = (value: number, oid: string) => ({
        resourceType: 'Observation',
        id: oid,
        status: 'final',
        code: { text: 'heart rate' },
        subject: { reference: `Patient/${patient}` },
        valueQuantity: { value, unit: '/min' },
      });
      const ops: Parameters<ResourceStore['write']>[0] = [{ op: 'put', resource: obs(60 + (n % 40), id) }];
      if (live.length > 2 && n % 3 === 0) ops.push({ op: 'put', resource: obs(100 + n, live[n % live.length]) });
      if (live.length > 4 && n % 5 === 0) ops.push({ op: 'delete', resourceType: 'Observation', id: live.splice(n % live.length, 1)[0] });
      await store.write(ops);
      live.push(id);
      done.created++;
      if (ops.length > 1) done.updated += ops.filter((o) => o.op === 'put').length - 1;
      done.deleted += ops.filter((o) => o.op === 'delete').length;
      await new Promise((resolve) => setTimeout(resolve, 25));
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

/** A webhook receiver that refuses its first delivery (so Temporal must retry) and keeps the rest. */
async function startWebhookReceiver() {
  const bodies: Array<{ scheduleId: string; exportId: string; transactionTime: string; manifest: CompletedExport['manifest'] }> = [];
  let attempts = 0;
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      attempts++;
      if (attempts === 1) {
        res.statusCode = 503;
        res.end();
        return;
      }
      bodies.push(JSON.parse(text));
      res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    bodies,
    attempts: () => attempts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('recurring incremental exports on Temporal Schedules', () => {
  let stack: ExportStack;
  let patientIds: string[];
  let failExports = false;

  beforeAll(async () => {
    stack = await startExportStack({ settings: { partitionSize: 300, maxPartResources: 200 } });
    const resources = await seed(stack.store, 3, 71);
    patientIds = resources.filter((r) => r.resourceType === 'Patient').map((r) => r.id as string);
    // A switch to make every export fail (the real activities otherwise).
    await stack.startWorker((real) => ({
      ...real,
      exportPartition: async (input) => {
        if (failExports) throw ApplicationFailure.nonRetryable('the test made this export fail', 'TestFailure');
        return real.exportPartition(input);
      },
    }));
  });
  afterAll(async () => {
    for (const id of ['chain', 'manual']) await admin(stack, 'DELETE', `/${id}`);
    await stack.close();
  });

  it('chains runs while a writer changes data: replaying outputs and deletions in order gives the store at the last transactionTime', async () => {
    const hook = await startWebhookReceiver();
    const writer = startWriter(stack.store, patientIds);
    try {
      const created = await admin(stack, 'POST', '', { id: 'chain', every: '3s', webhook: hook.url });
      expect(created.status).toBe(201);
      expect(created.headers.get('location')).toBe(`${stack.url}/admin/schedules/chain`);

      await waitFor(async () => ((await read(stack, 'chain')).runs ?? []).filter((r) => r.state === 'completed').length >= 4, 120_000, 'four completed runs');
    } finally {
      await writer.stop();
    }
    expect(writer.done.deleted).toBeGreaterThan(0);

    // Paused: no tick starts a run (three intervals pass).
    expect((await admin(stack, 'POST', '/chain/pause', { note: 'checking the chain' })).status).toBe(200);
    await waitFor(async () => (await read(stack, 'chain')).running.length === 0, 60_000, 'the last run to finish');
    const paused = await read(stack, 'chain');
    expect(paused.paused).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 9_000));
    const after = await read(stack, 'chain');
    expect(after.runs!.length).toBe(paused.runs!.length);

    // The chain: each completed run starts where the previous one stopped.
    const runs = after.runs!.filter((r) => r.state === 'completed').reverse();
    expect(runs[0].since).toBeUndefined();
    for (let i = 1; i < runs.length; i++) expect(runs[i].since).toBe(runs[i - 1].transactionTime);
    expect(after.watermark).toBe(runs.at(-1)!.transactionTime);

    // Replay: outputs put versions, deletions remove them.
    const replayed = new Map<string, string>();
    let deletions = 0;
    for (const run of runs) {
      const { keys } = await downloadAll(run.manifest!);
      for (const key of keys) {
        const [type, id, version] = key.split('/');
        replayed.set(`${type}/${id}`, version);
      }
      const deleted = await downloadDeleted(run.manifest!);
      deletions += deleted.length;
      for (const key of deleted) replayed.delete(key);
    }
    expect(deletions).toBeGreaterThan(0);
    const replayedKeys = [...replayed].map(([key, version]) => `${key}/${version}`).sort();
    expect(replayedKeys).toEqual(await stateAt(stack, runs.at(-1)!.transactionTime!));

    // Later runs held only changes: far fewer resources than the first.
    const counts = runs.map((r) => r.manifest!.output.reduce((n, o) => n + o.count, 0));
    expect(Math.max(...counts.slice(1))).toBeLessThan(counts[0]);

    // Each run's files under its own prefix; latest.json names the newest completed run.
    const last = runs.at(-1)!;
    const files = await stack.output.list(`${stack.store.tenant}/schedules/chain/${last.exportId}/`);
    expect(files.length).toBe(last.manifest!.output.length + (last.manifest!.deleted?.length ?? 0));
    const pointer = JSON.parse((await readText(stack.output, `${stack.store.tenant}/schedules/chain/latest.json`))!) as { exportId: string; manifest: unknown };
    expect(pointer.exportId).toBe(last.exportId);
    expect(pointer.manifest).toEqual(last.manifest);
    expect(after.latest?.exportId).toBe(last.exportId);

    // The webhook got every completed run's manifest, after a refused first delivery.
    await waitFor(async () => runs.every((r) => hook.bodies.some((b) => b.exportId === r.exportId)), 60_000, 'webhook deliveries');
    expect(hook.attempts()).toBeGreaterThan(hook.bodies.length);
    expect(hook.bodies.find((b) => b.exportId === last.exportId)?.manifest).toEqual(last.manifest);
    await hook.close();

    // Operators find a schedule's exports by its search attribute.
    const query = `WorkflowType = 'bulkExport' AND BulkflowScheduleId = 'chain' AND BulkflowTenant = '${stack.store.tenant}'`;
    await waitFor(async () => (await stack.client.workflow.count(query)).count >= runs.length, 30_000, 'visibility of the scheduled exports');
  }, 240_000);

  it('triggers, pauses, survives a failed run and being deleted and recreated without a gap', async () => {
    // A yearly cron: only triggers run it here.
    const definition = { id: 'manual', cron: '0 0 1 1 *', timeZone: 'Europe/Berlin', parameters: { _type: 'Observation' } };
    expect((await admin(stack, 'POST', '', definition)).status).toBe(201);
    const completedRuns = async () => ((await read(stack, 'manual')).runs ?? []).filter((r) => r.state === 'completed');

    await trigger(stack, 'manual');
    await waitFor(async () => (await completedRuns()).length === 1, 60_000, 'the triggered run');
    const first = (await completedRuns())[0];
    expect(first.since).toBeUndefined();
    expect(first.manifest!.output.every((o) => o.type === 'Observation')).toBe(true);

    // A failed run leaves the watermark where it was.
    await stack.store.write([{ op: 'put', resource: { resourceType: 'Observation', id: 'after-first', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${patientIds[0]}` } } }]);
    failExports = true;
    // The run is recorded before its workflow ends (the webhook child, the return): a trigger meanwhile is a 409.
    await waitFor(async () => (await read(stack, 'manual')).running.length === 0, 30_000, 'the first run to end');
    await trigger(stack, 'manual');
    await waitFor(async () => ((await read(stack, 'manual')).runs ?? []).some((r) => r.state === 'failed'), 60_000, 'the failed run');
    failExports = false;
    const failed = (await read(stack, 'manual')).runs!.find((r) => r.state === 'failed') as RunView & { reason: string };
    expect(failed.reason).toBe('the test made this export fail');
    expect((await read(stack, 'manual')).watermark).toBe(first.transactionTime);

    // Paused, a trigger still runs it (manual starts ignore the pause).
    expect((await admin(stack, 'POST', '/manual/pause')).status).toBe(200);
    expect((await read(stack, 'manual')).paused).toBe(true);
    await waitFor(async () => (await read(stack, 'manual')).running.length === 0, 30_000, 'no run going');
    await trigger(stack, 'manual');
    await waitFor(async () => (await completedRuns()).length === 2, 60_000, 'the run triggered while paused');
    const second = (await completedRuns())[0];
    expect(second.since).toBe(first.transactionTime);
    expect((await downloadAll(second.manifest!)).keys).toEqual(['Observation/after-first/1']);

    // Deleted: gone from the API. Recreated under the same id: the chain goes on from the watermark.
    expect((await admin(stack, 'DELETE', '/manual')).status).toBe(204);
    expect((await admin(stack, 'GET', '/manual')).status).toBe(404);
    const list = (await (await admin(stack, 'GET', '')).json()) as { schedules: Array<{ id: string }> };
    expect(list.schedules.map((s) => s.id)).not.toContain('manual');
    await stack.store.write([{ op: 'delete', resourceType: 'Observation', id: 'after-first' }]);
    expect((await admin(stack, 'POST', '', definition)).status).toBe(201);
    await trigger(stack, 'manual');
    await waitFor(async () => (await completedRuns()).length === 3, 60_000, 'the run of the recreated schedule');
    const third = (await completedRuns())[0];
    expect(third.since).toBe(second.transactionTime);
    expect(third.manifest!.output).toEqual([]);
    expect(await downloadDeleted(third.manifest!)).toEqual(['Observation/after-first']);
  }, 240_000);

  it('answers every bad definition with a 400 OperationOutcome naming the field', async () => {
    const cases: Array<[unknown, string]> = [
      [{ every: '1h' }, 'id'],
      [{ id: 'bad id', every: '1h' }, 'id'],
      [{ id: 'x' }, 'every'],
      [{ id: 'x', every: '1h', cron: '0 2 * * *' }, 'cron'],
      [{ id: 'x', every: 'hourly' }, 'every'],
      [{ id: 'x', cron: '0 2 * *' }, 'cron'],
      [{ id: 'x', cron: '0 2 * * *', timeZone: 'Mars/Olympus' }, 'timeZone'],
      [{ id: 'x', every: '1h', timeZone: 'Europe/Berlin' }, 'timeZone'],
      [{ id: 'x', every: '1h', parameters: { _since: '2024-01-01T00:00:00Z' } }, 'parameters._since'],
      [{ id: 'x', every: '1h', parameters: { _type: 'NoSuchType' } }, 'parameters._type'],
      [{ id: 'x', every: '1h', parameters: { patient: 'p1' } }, 'parameters.patient'],
      [{ id: 'x', every: '1h', level: 'group' }, 'group'],
      [{ id: 'x', every: '1h', level: 'group', group: 'no-such-group' }, 'group'],
      [{ id: 'x', every: '1h', start: 'yesterday' }, 'start'],
      [{ id: 'x', every: '1h', retention: '0d' }, 'retention'],
      [{ id: 'x', every: '1h', webhook: 'ftp://example.org/' }, 'webhook'],
      [{ id: 'x', every: '1h', outputPrefix: '../up' }, 'outputPrefix'],
      [{ id: 'x', every: '1h', colour: 'blue' }, 'colour'],
    ];
    for (const [body, field] of cases) {
      const res = await admin(stack, 'POST', '', body);
      const outcome = (await res.json()) as { resourceType: string; issue: Array<{ severity: string; expression?: string[] }> };
      expect([JSON.stringify(body), res.status]).toEqual([JSON.stringify(body), 400]);
      expect(outcome.resourceType).toBe('OperationOutcome');
      expect(outcome.issue[0].expression).toEqual([field]);
    }
    const notJson = await fetch(`${stack.url}/admin/schedules`, { method: 'POST', headers: json, body: '{' });
    expect(notJson.status).toBe(400);

    expect((await admin(stack, 'POST', '', { id: 'dup', every: '1d', paused: true })).status).toBe(201);
    const duplicate = await admin(stack, 'POST', '', { id: 'dup', every: '1d' });
    expect(duplicate.status).toBe(409);
    expect(((await duplicate.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    expect((await admin(stack, 'DELETE', '/dup')).status).toBe(204);
    for (const [method, path] of [['GET', '/nope'], ['POST', '/nope/pause'], ['POST', '/nope/trigger'], ['DELETE', '/nope'], ['PUT', '/nope']] as const) {
      const res = await admin(stack, method, path, method === 'PUT' ? { every: '1h' } : undefined);
      expect([method, path, res.status]).toEqual([method, path, 404]);
    }
  }, 60_000);

  it('is managed from the command line as through the API', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const cli = (...args: string[]) => scheduleCommand(args, { apiUrl: stack.url }, (l) => out.push(l), (l) => err.push(l));
    expect(await cli('create', 'from-cli', '--every', '12h', '--type', 'Patient', '--type-filter', 'Patient?gender=female', '--retention', '3d', '--paused')).toBe(0);
    expect(JSON.parse(out.pop()!)).toMatchObject({ id: 'from-cli', every: '12h', paused: true, parameters: { _type: ['Patient'], _typeFilter: ['Patient?gender=female'] }, retention: '3d' });
    expect(await cli('unpause', 'from-cli', '--note', 'go')).toBe(0);
    expect(JSON.parse(out.pop()!)).toMatchObject({ paused: false, note: 'go' });
    expect([await cli('list'), err]).toEqual([0, []]); // what the API answered, when it failed
    expect((JSON.parse(out.pop()!) as { schedules: Array<{ id: string }> }).schedules.map((s) => s.id)).toContain('from-cli');
    expect(await cli('create', 'from-cli', '--every', '12h')).toBe(1);
    expect(err.pop()).toMatch(/409: Schedule from-cli already exists/);
    expect(await cli('create', 'broken', '--every', 'often')).toBe(1);
    expect(err.pop()).toMatch(/400: every must be a whole number/);
    expect(await cli('frobnicate')).toBe(2);
    expect(await cli('delete', 'from-cli')).toBe(0);
    expect(await cli('show', 'from-cli')).toBe(1);
    expect(err.pop()).toMatch(/404/);
  });

  it('updates a schedule in place and reads back what it was given', async () => {
    expect((await admin(stack, 'POST', '', { id: 'changing', every: '1d', paused: true, parameters: { _type: 'Patient' } })).status).toBe(201);
    const updated = await admin(stack, 'PUT', '/changing', { cron: '30 2 * * *', timeZone: 'America/New_York', parameters: { _type: ['Patient', 'Observation'] }, retention: '2d' });
    expect(updated.status).toBe(200);
    const view = await read(stack, 'changing');
    expect(view).toMatchObject({ id: 'changing', cron: '30 2 * * *', timeZone: 'America/New_York', parameters: { _type: ['Patient', 'Observation'] }, retention: '2d', paused: true, outputPrefix: 'schedules/changing' });
    expect((view as unknown as { every?: string }).every).toBeUndefined();
    const description = await stack.client.schedule.getHandle(`bulkflow.${stack.store.tenant}.changing`).describe();
    expect(description.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 2, end: 2, step: 1 }], minute: [{ start: 30, end: 30, step: 1 }] });
    expect(description.spec.timezone).toBe('America/New_York');
    expect((await admin(stack, 'DELETE', '/changing')).status).toBe(204);
  }, 60_000);
});
