/**
 * The asynchronous request pattern with a result URL (303 See Other), for $export behind the
 * configuration switch and for `Prefer: respond-async` searches and batches.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { generatePopulation } from '../../src/generate/population';
import { kickOff, kickoffHeaders, startExportStack, type ExportStack } from '../support/export-stack';

/** Follows a status URL until it stops answering 202; returns that answer (redirects not followed). */
async function pollStatus(statusUrl: string, timeoutMs = 60_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await fetch(statusUrl, { redirect: 'manual' });
    if (res.status !== 202) return res;
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    await res.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 1000 * Number(res.headers.get('retry-after'))));
  }
  throw new Error(`${statusUrl} still running after ${timeoutMs} ms`);
}

describe('303 See Other to a result URL', () => {
  let stack: ExportStack;
  const resources = [...generatePopulation({ patients: 2, seed: 3 })];

  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const lostOnce = new Set<string>();

  beforeAll(async () => {
    stack = await startExportStack({ resultPattern: 'see-other', asyncSyncWaitMs: 0 });
    await stack.store.write(resources.map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker((real) => ({
      ...real,
      planExport: async (input) => {
        if (input.types?.includes('Device')) throw ApplicationFailure.nonRetryable('planning refused for this test');
        return real.planExport(input);
      },
      // Encounter exports wait for the test, so a job is surely running.
      exportPartition: async (input) => {
        if (input.partition.type === 'Encounter') await gate;
        return real.exportPartition(input);
      },
      // A batch's first attempt is lost after it did its work: the retry must not do it again.
      runAsyncRequest: async (input) => {
        const response = await real.runAsyncRequest(input);
        if (input.kind === 'batch' && !lostOnce.has(input.requestId)) {
          lostOnce.add(input.requestId);
          throw new Error('worker lost after the batch (test)');
        }
        return response;
      },
    }));
  });
  afterAll(() => release());
  afterAll(() => stack.close());

  it('$export: 303 to the result URL, which serves the manifest with Expires, the same every time; DELETE then 404s both', async () => {
    const statusUrl = await kickOff(stack, '?_type=Patient');
    const done = await pollStatus(statusUrl);
    expect(done.status).toBe(303);
    expect(await done.text()).toBe('');
    const resultUrl = done.headers.get('location')!;
    expect(resultUrl).toBe(`${statusUrl}/result`);

    const result = await fetch(resultUrl);
    expect(result.status).toBe(200);
    expect(Date.parse(result.headers.get('expires')!)).toBeGreaterThan(Date.now());
    const manifest = (await result.json()) as { output: Array<{ type: string; count: number }> };
    expect(manifest.output).toEqual([expect.objectContaining({ type: 'Patient', count: 2 })]);
    expect(await (await fetch(resultUrl)).json()).toEqual(manifest);

    expect((await fetch(statusUrl, { method: 'DELETE' })).status).toBe(202);
    expect((await fetch(statusUrl, { redirect: 'manual' })).status).toBe(404);
    expect((await fetch(resultUrl)).status).toBe(404);
  });

  it('$export: a failed export also answers 303, and its result is the error status with an OperationOutcome', async () => {
    const statusUrl = await kickOff(stack, '?_type=Device');
    const done = await pollStatus(statusUrl);
    expect(done.status).toBe(303);
    const result = await fetch(done.headers.get('location')!);
    expect(result.status).toBe(500);
    expect(((await result.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });

  it('answers 202 on the status URL and 404 on the result URL while an export runs', async () => {
    const statusUrl = await kickOff(stack, '?_type=Encounter');
    const running = await fetch(statusUrl, { redirect: 'manual' });
    expect(running.status).toBe(202);
    expect((await fetch(`${statusUrl}/result`)).status).toBe(404);
    release();
    expect((await pollStatus(statusUrl)).status).toBe(303);
  });

  it('answers 404 on both URLs for unknown jobs', async () => {
    for (const url of [`${stack.fhir}/bulkstatus/AAAAAAAAAAAAAAAAAAAAAA`, `${stack.fhir}/bulkstatus/AAAAAAAAAAAAAAAAAAAAAA/result`, `${stack.fhir}/async/AAAAAAAAAAAAAAAAAAAAAA`, `${stack.fhir}/async/AAAAAAAAAAAAAAAAAAAAAA/result`]) {
      const res = await fetch(url, { redirect: 'manual' });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    }
  });

  it('runs a search with Prefer: respond-async: 202, then 303 to a batch-response carrying the synchronous answer', async () => {
    const path = '/Observation?code=http://loinc.org|8302-2&_count=5';
    const sync = (await (await fetch(`${stack.fhir}${path}`)).json()) as { total: number; entry: unknown[]; link: Array<{ relation: string; url: string }> };
    const kick = await fetch(`${stack.fhir}${path}`, { headers: { Prefer: 'respond-async' } });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    expect(statusUrl).toMatch(/\/fhir\/async\/[A-Za-z0-9_-]{22}$/);

    const done = await pollStatus(statusUrl);
    expect(done.status).toBe(303);
    const result = await fetch(done.headers.get('location')!);
    expect(result.status).toBe(200);
    expect(result.headers.get('expires')).toBeTruthy();
    const bundle = (await result.json()) as { type: string; entry: Array<{ response: { status: string }; resource: typeof sync }> };
    expect(bundle.type).toBe('batch-response');
    expect(bundle.entry).toHaveLength(1);
    expect(bundle.entry[0].response.status).toBe('200 OK');
    const asyncAnswer = bundle.entry[0].resource;
    expect(asyncAnswer.total).toBe(sync.total);
    expect(asyncAnswer.entry).toEqual(sync.entry);
    expect(asyncAnswer.link.find((l) => l.relation === 'self')).toEqual(sync.link.find((l) => l.relation === 'self'));

    expect((await fetch(statusUrl, { method: 'DELETE' })).status).toBe(202);
    expect((await fetch(statusUrl, { redirect: 'manual' })).status).toBe(404);
    expect((await fetch(`${statusUrl}/result`)).status).toBe(404);
  });

  it('refuses a bad search at once, even with Prefer: respond-async', async () => {
    const res = await fetch(`${stack.fhir}/Observation?nonsense=1`, { headers: { Prefer: 'respond-async' } });
    expect(res.status).toBe(400);
  });

  it('runs a batch with Prefer: respond-async exactly once (also when retried), answering what the synchronous batch answers', async () => {
    const batch = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { request: { method: 'PUT', url: 'Patient/async-1' }, resource: { resourceType: 'Patient', id: 'async-1', active: true } },
        { request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/async-1' } } },
        { request: { method: 'DELETE', url: 'Patient/never-existed' } },
        { request: { method: 'PATCH', url: 'Patient/async-1' } },
      ],
    };
    const post = (prefer?: string) =>
      fetch(stack.fhir, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json', ...(prefer ? { Prefer: prefer } : {}) }, body: JSON.stringify(batch) });
    const kick = await post('respond-async');
    expect(kick.status).toBe(202);
    const done = await pollStatus(kick.headers.get('content-location')!);
    const wrapped = (await (await fetch(done.headers.get('location')!)).json()) as {
      entry: Array<{ resource: { type: string; entry: Array<{ response: { status: string }; resource?: { id: string } }> } }>;
    };
    const asyncAnswer = wrapped.entry[0].resource;
    expect(asyncAnswer.type).toBe('batch-response');
    expect(asyncAnswer.entry.map((e) => e.response.status)).toEqual(['201 Created', '201 Created', '204 No Content', '400']);

    const sync = (await (await post()).json()) as typeof asyncAnswer;
    expect(sync.entry.map((e) => e.response.status)).toEqual(['200 OK', '201 Created', '204 No Content', '400']);
    // The async POST created exactly one Observation for the patient (retries rewrite the same id).
    const observations = (await (await fetch(`${stack.fhir}/Observation?subject=Patient/async-1&_summary=count`)).json()) as { total: number };
    expect(observations.total).toBe(2); // one from the async batch, one from the synchronous one
    expect(asyncAnswer.entry[1].resource!.id).not.toBe(sync.entry[1].resource!.id);
  });
});

describe('Prefer: respond-async answered synchronously when quick', () => {
  let stack: ExportStack;
  beforeAll(async () => {
    stack = await startExportStack({ asyncSyncWaitMs: 10_000 });
    await stack.store.write([...generatePopulation({ patients: 1, seed: 4 })].map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  it('answers a quick search with its own response, as without the header', async () => {
    const path = '/Patient?_count=3';
    const sync = (await (await fetch(`${stack.fhir}${path}`)).json()) as { total: number; entry: unknown[] };
    const quick = await fetch(`${stack.fhir}${path}`, { headers: { Prefer: 'respond-async' } });
    expect(quick.status).toBe(200);
    const body = (await quick.json()) as typeof sync;
    expect(body.total).toBe(sync.total);
    expect(body.entry).toEqual(sync.entry);
  });

  it('keeps the IG behaviour for $export by default: 200 with the manifest on the status URL', async () => {
    const statusUrl = await kickOff(stack, '?_type=Patient', kickoffHeaders);
    const done = await pollStatus(statusUrl);
    expect(done.status).toBe(200);
  });
});
