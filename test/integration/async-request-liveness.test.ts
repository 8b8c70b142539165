/**
 * A `Prefer: respond-async` request that sits in one slow query (here: behind a table lock the
 * test holds) must still look alive to Temporal, finish once, and stop at once when cancelled.
 */
import type { PoolClient } from 'pg';
import { generatePopulation } from '../../src/generate/population';
import { startExportStack, type ExportStack } from '../support/export-stack';
import { privateDatabase } from '../support/database';
import { waitFor } from '../support/wait';

const HEARTBEAT_TIMEOUT_MS = 3_000;

describe('async requests stay alive through a slow query and honour cancellation', () => {
  let stack: ExportStack;
  // Its own database: the test locks the resource table, which would hold up the files running beside it.
  let database: Awaited<ReturnType<typeof privateDatabase>>;

  beforeAll(async () => {
    database = await privateDatabase('asyncliveness');
    stack = await startExportStack({ pool: database.pool, asyncSyncWaitMs: 0, settings: { heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS } });
    await stack.store.write([...generatePopulation({ patients: 3, seed: 30 })].map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker();
  });
  afterAll(async () => {
    await stack.close();
    await database.drop();
  });

  /** Holds an exclusive lock on the resource table until released: every read of it waits. */
  let holder: number | undefined;
  async function lockResources(): Promise<{ release(): Promise<void> }> {
    const client: PoolClient = await stack.pool.connect();
    await client.query('BEGIN');
    await client.query('LOCK TABLE resource_versions IN ACCESS EXCLUSIVE MODE');
    holder = (client as unknown as { processID: number }).processID;
    return {
      async release() {
        await client.query('ROLLBACK');
        client.release();
      },
    };
  }

  /** Statements waiting on the test's lock: the search's (other test files share the server, and their waits are not counted). */
  async function waitingStatements(): Promise<number> {
    if (holder === undefined) return 0;
    const { rows } = await stack.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [holder]);
    return rows[0].n;
  }

  async function kickOffSearch(): Promise<string> {
    const kick = await fetch(`${stack.fhir}/Patient?_count=10`, { headers: { Prefer: 'respond-async' } });
    expect(kick.status).toBe(202);
    return kick.headers.get('content-location')!;
  }

  const workflowOf = (statusUrl: string) => stack.client.workflow.getHandle(statusUrl.split('/').pop()!);

  it('runs a search longer than its heartbeat timeout once, to completion', async () => {
    const lock = await lockResources();
    let statusUrl: string;
    try {
      statusUrl = await kickOffSearch();
      await waitFor(async () => (await waitingStatements()) > 0, 20_000, 'the search waiting on the lock');
      // Four heartbeat timeouts inside one query: without timer heartbeats the attempt would time out.
      await new Promise((resolve) => setTimeout(resolve, 4 * HEARTBEAT_TIMEOUT_MS));
    } finally {
      await lock.release();
    }
    await waitFor(async () => (await fetch(statusUrl, { redirect: 'manual' })).status === 303, 30_000, 'the search to finish');
    const result = (await (await fetch(`${statusUrl}/result`)).json()) as { entry: Array<{ resource: { total: number; entry: unknown[] } }> };
    expect(result.entry[0].resource.total).toBe(3);
    expect(result.entry[0].resource.entry).toHaveLength(3);

    const events = (await workflowOf(statusUrl).fetchHistory()).events ?? [];
    const started = events.filter((e) => e.activityTaskStartedEventAttributes);
    expect(started).toHaveLength(1); // runAsyncRequest only; deleteAsyncFiles runs at expiry
    expect(started[0].activityTaskStartedEventAttributes!.attempt).toBe(1);
    expect(events.some((e) => e.activityTaskTimedOutEventAttributes)).toBe(false);
  });

  it('stops a search cancelled mid-query within seconds: its statement is cancelled, the workflow ends', async () => {
    const lock = await lockResources();
    try {
      const statusUrl = await kickOffSearch();
      await waitFor(async () => (await waitingStatements()) > 0, 20_000, 'the search waiting on the lock');
      const asked = Date.now();
      expect((await fetch(statusUrl, { method: 'DELETE' })).status).toBe(202);
      const handle = workflowOf(statusUrl);
      await waitFor(async () => (await handle.describe()).status.name === 'CANCELLED', 15_000, 'the workflow to end cancelled');
      // The lock is still held: the statement no longer waits only because it was cancelled.
      expect(await waitingStatements()).toBe(0);
      console.log(`async request stopped ${Date.now() - asked} ms after DELETE`);
      expect((await fetch(statusUrl, { redirect: 'manual' })).status).toBe(404);
      const events = (await handle.fetchHistory()).events ?? [];
      expect(events.some((e) => e.activityTaskCanceledEventAttributes)).toBe(true);
    } finally {
      await lock.release();
    }
  });
});
