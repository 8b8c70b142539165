/**
 * Liveness apart from data flow: planning and partitions heartbeat on a timer while a query
 * sits behind a lock (here one the test holds), so a DELETE reaches them and stops their
 * statements within seconds; partitions run on their own task queue, so control work (an
 * async request) does not wait behind partitions that hold every partition slot.
 */
import type { PoolClient } from 'pg';
import { Context } from '@temporalio/activity';
import { generatePopulation } from '../../src/generate/population';
import { kickOff, startExportStack, type ExportStack } from '../support/export-stack';
import { privateDatabase } from '../support/database';
import { waitFor } from '../support/wait';

describe('export liveness', () => {
  let stack: ExportStack;
  // Its own database: the test locks the resource table, which would hold up the files running beside it.
  let database: Awaited<ReturnType<typeof privateDatabase>>;
  let lockNextPartition = false;
  let held: PoolClient | undefined;
  const holding: string[] = [];

  /** Takes an exclusive lock on the resource table: every read of it waits until released. */
  async function lock(): Promise<void> {
    held = await stack.pool.connect();
    await held.query('BEGIN');
    await held.query('LOCK TABLE resource_versions IN ACCESS EXCLUSIVE MODE');
  }
  async function unlock(): Promise<void> {
    await held?.query('ROLLBACK');
    held?.release();
    held = undefined;
  }
  /** Statements waiting on the test's lock (not on any other: other test files share the server). */
  const waitingStatements = async () => {
    const holder = held && (held as unknown as { processID: number }).processID;
    if (!holder) return 0;
    return (await stack.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [holder])).rows[0].n;
  };

  beforeAll(async () => {
    database = await privateDatabase('liveness');
    stack = await startExportStack({ pool: database.pool, asyncSyncWaitMs: 0, settings: { heartbeatTimeoutMs: 30_000, partitionSize: 1, maxParallelPartitions: 8 } }); // EXPORT_HEARTBEAT_TIMEOUT_SECONDS' default: what a DELETE meets in production
    await stack.store.write([...generatePopulation({ patients: 6, seed: 505 })].map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker((real) => ({
      ...real,
      exportPartition: async (input) => {
        if (lockNextPartition) {
          lockNextPartition = false;
          await lock(); // the real partition below then waits on it, inside its query
        }
        if (input.partition.type !== 'Practitioner') return real.exportPartition(input);
        // Practitioner partitions hold their slot, alive, until cancelled.
        const context = Context.current();
        holding.push(input.location.exportId);
        const beat = setInterval(() => context.heartbeat(), 200);
        try {
          await context.cancelled;
        } finally {
          clearInterval(beat);
        }
        throw new Error('unreachable');
      },
    }));
  });
  afterEach(() => unlock());
  afterAll(async () => {
    await stack.close();
    await database.drop();
  });

  /** A DELETE reaches a running activity with the answer to its next heartbeat: beats at most 2 s apart, and the workflow's end. */
  const CANCEL_WITHIN_MS = 3_500;

  /** DELETEs the export and waits for its workflow to end cancelled; the milliseconds it took. */
  async function cancelAndTime(statusUrl: string): Promise<number> {
    const asked = Date.now();
    expect((await fetch(statusUrl, { method: 'DELETE' })).status).toBe(202);
    const handle = stack.client.workflow.getHandle(statusUrl.split('/').pop()!);
    await waitFor(async () => (await handle.describe()).status.name === 'CANCELLED', 20_000, 'the export to end cancelled');
    return Date.now() - asked;
  }

  it('stops an export cancelled while planning waits in its query', async () => {
    await lock();
    const statusUrl = await kickOff(stack, '?_type=Patient');
    await waitFor(async () => (await waitingStatements()) > 0, 20_000, 'planning waiting on the lock');
    const tookMs = await cancelAndTime(statusUrl);
    expect(await waitingStatements()).toBe(0); // the lock is still held: the statement was cancelled
    expect(tookMs).toBeLessThan(CANCEL_WITHIN_MS);
  });

  it('stops an export cancelled while a partition waits in its query', async () => {
    lockNextPartition = true;
    const statusUrl = await kickOff(stack, '?_type=Patient');
    await waitFor(async () => (await waitingStatements()) > 0, 20_000, 'a partition waiting on the lock');
    const tookMs = await cancelAndTime(statusUrl);
    expect(await waitingStatements()).toBe(0);
    expect(tookMs).toBeLessThan(CANCEL_WITHIN_MS);
  });

  it('runs control work while partitions hold every partition slot', async () => {
    const statusUrl = await kickOff(stack, '?_type=Practitioner');
    await waitFor(async () => holding.filter((id) => statusUrl.endsWith(id)).length >= 4, 20_000, 'four partitions holding the slots');
    const kick = await fetch(`${stack.fhir}/Patient?_count=2`, { headers: { Prefer: 'respond-async' } });
    const searchUrl = kick.headers.get('content-location')!;
    await waitFor(async () => (await fetch(searchUrl, { redirect: 'manual' })).status === 303, 15_000, 'the async search to finish beside the partitions');
    expect(holding.filter((id) => statusUrl.endsWith(id)).length).toBe(4); // still only as many as there are slots
    await cancelAndTime(statusUrl);
  });
});
