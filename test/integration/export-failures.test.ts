/**
 * Failures that end: a resource that can never be exported fails a strict export at once with an
 * OperationOutcome naming it (the sibling partitions are cancelled, the files deleted), and is
 * left out and reported under lenient handling; a bucket that disappears fails the export at
 * once with that cause, instead of retrying for ever behind a 202.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { Storage } from '@google-cloud/storage';
import { generatePopulation } from '../../src/generate/population';
import { testEnvironment } from '../harness/environment';
import { describeExport, kickoffHeaders, startExportStack, type ExportStack } from '../support/export-stack';
import { waitFor } from '../support/wait';

type Json = { resourceType: string; id: string };

/** Polls until the status URL stops answering 202; returns that answer. */
async function finalAnswer(statusUrl: string, headers: Record<string, string> = {}): Promise<Response> {
  let res = await fetch(statusUrl, { headers });
  for (const deadline = Date.now() + 20_000; res.status === 202 && Date.now() < deadline; res = await fetch(statusUrl, { headers })) {
    await res.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return res;
}

/** How often each activity type was attempted, from the workflow's history. */
async function failedAttempts(stack: ExportStack, statusUrl: string, activityType: string): Promise<number[]> {
  const events = (await stack.client.workflow.getHandle(statusUrl.split('/').pop()!).fetchHistory()).events ?? [];
  const scheduled = new Map(events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType?.name]));
  return events
    .filter((e) => e.activityTaskFailedEventAttributes && scheduled.get(String(e.activityTaskFailedEventAttributes.scheduledEventId)) === activityType)
    .map((e) => {
      const started = events.find((s) => String(s.eventId) === String(e.activityTaskFailedEventAttributes!.startedEventId));
      return started?.activityTaskStartedEventAttributes?.attempt ?? 0;
    });
}

describe('a resource that can never be exported', () => {
  let stack: ExportStack;
  const resources = [...generatePopulation({ patients: 6, seed: 404 })] as Json[];
  const patients = resources.filter((r) => r.resourceType === 'Patient');
  const poison = patients[3];
  const siblingCancelled: string[] = [];

  beforeAll(async () => {
    stack = await startExportStack({ settings: { partitionSize: 2, maxParallelPartitions: 2 } });
    await stack.store.write(resources.map((resource) => ({ op: 'put' as const, resource })));
    // Damaged in the store, as a write around bulkflow could leave it.
    await stack.pool.query("UPDATE resource_versions SET body = left(body, -1) WHERE tenant = $1 AND resource_type = 'Patient' AND id = $2", [stack.store.tenant, poison.id]);
    await stack.startWorker((real) => ({
      ...real,
      // The first Encounter partition runs until it is cancelled: the victim of a strict failure.
      exportPartition: async (input) => {
        if (input.partition.type !== 'Encounter' || input.partition.partition !== 0) return real.exportPartition(input);
        const context = Context.current();
        const beat = setInterval(() => context.heartbeat(), 200);
        try {
          await context.cancelled;
        } catch (err) {
          siblingCancelled.push(`${input.location.exportId}/${input.partition.partition}`);
          throw err;
        } finally {
          clearInterval(beat);
        }
        throw new Error('unreachable');
      },
    }));
  });
  afterAll(() => stack.close());

  it('fails a strict export at once with an OperationOutcome naming the resource, cancels the sibling partitions and deletes the files', async () => {
    const kick = await fetch(`${stack.fhir}/$export?_type=Encounter,Patient&_elements=birthDate`, { headers: kickoffHeaders });
    const statusUrl = kick.headers.get('content-location')!;
    const exportId = statusUrl.split('/').pop()!;
    const answer = await finalAnswer(statusUrl);
    if (answer.status === 202) console.log(await describeExport(stack.client, statusUrl));
    expect(answer.status).toBe(422);
    const outcome = (await answer.json()) as { resourceType: string; issue: Array<{ code: string; diagnostics: string }> };
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0].code).toBe('processing');
    expect(outcome.issue[0].diagnostics).toContain(`Patient/${poison.id} in the store is not valid JSON`);

    expect(await failedAttempts(stack, statusUrl, 'exportPartition')).toEqual([1]); // not retried
    expect(siblingCancelled).toEqual([`${exportId}/0`]);
    await waitFor(async () => readdirSync(path.join(stack.outputDir!, stack.store.tenant)).every((dir) => dir !== exportId), 10_000, 'the files to be deleted');
  });

  it('leaves the resource out under lenient handling and names it in the error file', async () => {
    const kick = await fetch(`${stack.fhir}/$export?_type=Patient&_elements=birthDate`, { headers: { ...kickoffHeaders, Prefer: 'respond-async, handling=lenient' } });
    expect(kick.status).toBe(202);
    const answer = await finalAnswer(kick.headers.get('content-location')!);
    if (answer.status === 202) console.log(await describeExport(stack.client, kick.headers.get('content-location')!));
    expect(answer.status).toBe(200);
    const manifest = (await answer.json()) as { output: Array<{ type: string; url: string; count: number }>; error: Array<{ url: string }> };
    const exported = (await Promise.all(manifest.output.map(async (o) => (await (await fetch(o.url)).text()).trim().split('\n')))).flat().map((l) => (JSON.parse(l) as Json).id);
    expect(exported.sort()).toEqual(patients.filter((p) => p !== poison).map((p) => p.id).sort());
    expect(manifest.error).toHaveLength(1);
    const issues = (await (await fetch(manifest.error[0].url)).text()).trim().split('\n').map((l) => JSON.parse(l) as { issue: Array<{ diagnostics: string }> });
    expect(issues.map((o) => o.issue[0].diagnostics)).toEqual([`Patient/${poison.id} in the store is not valid JSON; left out`]);
  });
});

describe('an output bucket that disappears', () => {
  let stack: ExportStack;
  const bucket = `vanishing-${randomUUID().slice(0, 8)}`;
  const storage = new Storage({ apiEndpoint: testEnvironment.gcsEndpoint, projectId: 'bulkflow-test' });

  beforeAll(async () => {
    await storage.createBucket(bucket);
    stack = await startExportStack({ backend: 'gcs', gcsBucket: bucket });
    await stack.store.write([...generatePopulation({ patients: 2, seed: 405 })].map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  it('fails the export at once with an OperationOutcome naming the output store', async () => {
    await storage.bucket(bucket).delete();
    const kick = await fetch(`${stack.fhir}/$export?_type=Patient`, { headers: kickoffHeaders });
    const statusUrl = kick.headers.get('content-location')!;
    const answer = await finalAnswer(statusUrl);
    if (answer.status === 202) console.log(await describeExport(stack.client, statusUrl));
    expect(answer.status).toBe(500);
    const outcome = (await answer.json()) as { issue: Array<{ diagnostics: string }> };
    expect(outcome.issue[0].diagnostics).toBe(`The export failed: The output bucket ${bucket} does not exist`);
    expect(await failedAttempts(stack, statusUrl, 'exportPartition')).toEqual([1]);
  });
});
