/** Status polls that come sooner than the Retry-After they were given are answered 429; on-time polls never are. */
import { kickOff, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';

describe('status polling limits', () => {
  let stack: ExportStack;

  beforeAll(async () => {
    // No worker: the export stays in progress, so every poll is a 202 or a 429.
    stack = await startExportStack({ retryAfterSeconds: 2, pollToleranceMs: 300 });
  });
  afterAll(() => stack.close());

  it('answers a too-early poll 429 with Retry-After, and a poll that waited 202', async () => {
    const statusUrl = await kickOff(stack);
    const first = await fetch(statusUrl);
    expect(first.status).toBe(202);
    expect(first.headers.get('retry-after')).toBe('2');

    const early = await fetch(statusUrl);
    expect(early.status).toBe(429);
    expect(Number(early.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const outcome = (await early.json()) as { resourceType: string; issue: Array<{ code: string }> };
    expect(outcome).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ code: 'throttled' }] });

    await new Promise((resolve) => setTimeout(resolve, 2000));
    const onTime = await fetch(statusUrl);
    expect(onTime.status).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, 1800)); // within the 300 ms tolerance
    expect((await fetch(statusUrl)).status).toBe(202);

    // A DELETE is never throttled, and the cancelled export answers 404, not 429.
    expect((await fetch(statusUrl, { method: 'DELETE' })).status).toBe(202);
    expect((await fetch(statusUrl)).status).toBe(404);
  });
});

describe('polls of a finished export', () => {
  let stack: ExportStack;

  beforeAll(async () => {
    stack = await startExportStack({ retryAfterSeconds: 1 });
    await stack.store.write([{ op: 'put', resource: { resourceType: 'Patient', id: 'polled' } }]);
  });
  afterAll(() => stack.close());

  it('answer its manifest while no worker runs (its status never changes again), and 404 once it is deleted', async () => {
    const worker = await stack.startWorker();
    const statusUrl = await kickOff(stack, '?_type=Patient');
    const { manifest } = await pollUntilDone(statusUrl, 60_000);
    await worker.stop();
    // No worker could answer a status query now: the manifest comes from the status already seen.
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const res = await fetch(statusUrl);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual(manifest);
      expect(Date.now() - started).toBeLessThan(2000); // not a query waiting out its deadline
    }
    // Deleted, it is gone at once (the description says so), though its status was kept.
    expect((await fetch(statusUrl, { method: 'DELETE' })).status).toBe(202);
    expect((await fetch(statusUrl)).status).toBe(404);
  });
});
