import type { Pool } from 'pg';
import { ScheduleLedger } from '../../src/store/schedule-ledger';
import { migratedPool, uniqueTenant } from '../support/database';

describe('ScheduleLedger (the watermark of scheduled exports, in PostgreSQL)', () => {
  let pool: Pool;
  let ledger: ScheduleLedger;
  let tenant: string;

  beforeAll(async () => {
    pool = await migratedPool();
    ledger = new ScheduleLedger(pool);
  });
  beforeEach(() => {
    tenant = uniqueTenant('ledger');
  });
  afterAll(() => pool.end());

  const begin = (runId: string, start?: string) => ledger.beginRun({ tenant, scheduleId: 's', workflowId: `wf-${runId}`, runId, start });
  const complete = (exportId: string, watermark: string | undefined, transactionTime: string) =>
    ledger.completeRun({ tenant, scheduleId: 's', exportId, watermark, transactionTime, manifest: { transactionTime } });

  it('starts the first run from the configured start, later runs from the watermark', async () => {
    const first = await begin('r1', '2024-01-01T00:00:00+01:00');
    expect(first).toMatchObject({ since: '2023-12-31T23:00:00.000Z', watermark: undefined });
    expect(first.exportId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(await complete(first.exportId, first.watermark, '2024-02-01T00:00:00.000Z')).toBe('completed');
    const second = await begin('r2', '2024-01-01T00:00:00Z');
    expect(second).toMatchObject({ since: '2024-02-01T00:00:00.000Z', watermark: '2024-02-01T00:00:00.000Z' });
    expect(await ledger.schedule(tenant, 's')).toEqual({
      watermark: '2024-02-01T00:00:00.000Z',
      watermarkExportId: first.exportId,
      latestManifest: { transactionTime: '2024-02-01T00:00:00.000Z' },
    });
  });

  it('gives a retried start the same export and since', async () => {
    const once = await begin('r1');
    const again = await begin('r1');
    expect(again).toEqual(once);
    expect(await ledger.runs(tenant, 's', 10)).toHaveLength(1);
  });

  it('lets only one of two runs from the same watermark move it: the other is superseded', async () => {
    const a = await begin('a');
    const b = await begin('b');
    expect(b.since).toBe(a.since);
    expect(await complete(b.exportId, b.watermark, '2024-03-01T00:00:00.000Z')).toBe('completed');
    expect(await complete(a.exportId, a.watermark, '2024-03-02T00:00:00.000Z')).toBe('superseded');
    expect((await ledger.schedule(tenant, 's')).watermark).toBe('2024-03-01T00:00:00.000Z');
    // Recording again (a retried activity) changes nothing.
    expect(await complete(a.exportId, a.watermark, '2024-03-02T00:00:00.000Z')).toBe('superseded');
    expect(await complete(b.exportId, b.watermark, '2024-03-01T00:00:00.000Z')).toBe('completed');
    const states = Object.fromEntries((await ledger.runs(tenant, 's', 10)).map((r) => [r.exportId, r.state]));
    expect(states).toEqual({ [a.exportId]: 'superseded', [b.exportId]: 'completed' });
  });

  it('keeps the watermark when a run fails or is cancelled', async () => {
    const first = await begin('r1');
    await complete(first.exportId, first.watermark, '2024-04-01T00:00:00.000Z');
    const failed = await begin('r2');
    await ledger.endRun({ tenant, exportId: failed.exportId, state: 'failed', reason: 'boom' });
    const next = await begin('r3');
    expect(next.since).toBe('2024-04-01T00:00:00.000Z');
    const runs = await ledger.runs(tenant, 's', 10);
    expect(runs.find((r) => r.exportId === failed.exportId)).toMatchObject({ state: 'failed', reason: 'boom' });
  });
});
