/**
 * Liveness apart from data flow. Temporal learns that an activity lives, and the activity learns
 * that it was cancelled, only through heartbeats; work that can sit inside one long query
 * (planning, a slow search, a lock wait) would look dead and never hear a DELETE. `heartbeating`
 * beats on a timer while the work runs; `cancellableQueries` gives the work a pool of its own
 * whose running statements PostgreSQL cancels the moment the activity is cancelled.
 */
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import { derivedPool } from '../src/store/database';

/** A quarter of the heartbeat timeout (so three beats may be lost), between 0.5 and 10 s. */
export function heartbeatEveryMs(heartbeatTimeoutMs: number | undefined): number {
  return Math.min(10_000, Math.max(500, (heartbeatTimeoutMs ?? 40_000) / 4));
}

/** Each running activity's latest heartbeat details, which the timer repeats. */
const latest = new WeakMap<Context, unknown>();

/** Heartbeats `details` (a resume cursor) now; timer beats repeat them from here on. */
export function heartbeatDetails(details: unknown): void {
  const context = Context.current();
  latest.set(context, structuredClone(details)); // as of now: the caller goes on changing its object
  context.heartbeat(details);
}

/**
 * Runs `work` while heartbeating on a timer; `work` gets the activity's cancellation signal. A
 * timer beat repeats the latest details (at first the previous attempt's), so it never erases a
 * resume cursor. A cancelled activity rejects with the cancellation, not with whatever error
 * the interrupted work ended in.
 */
export async function heartbeating<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const context = Context.current();
  latest.set(context, context.info.heartbeatDetails);
  const beat = () => context.heartbeat(latest.get(context));
  beat();
  const timer = setInterval(beat, heartbeatEveryMs(context.info.heartbeatTimeoutMs));
  try {
    return await work(context.cancellationSignal);
  } catch (err) {
    throw context.cancellationSignal.aborted ? context.cancellationSignal.reason : err;
  } finally {
    clearInterval(timer);
  }
}

/**
 * Runs `work` on a small pool of its own, tagged by application_name, so that an abort cancels
 * exactly its statements (pg_cancel_backend, from the shared pool) instead of waiting for them.
 */
export async function cancellableQueries<T>(shared: Pool, signal: AbortSignal, work: (own: Pool) => Promise<T>, connections = 2): Promise<T> {
  signal.throwIfAborted();
  const tag = `bulkflow-${randomUUID()}`;
  const own = derivedPool(shared, { max: connections, application_name: tag });
  const cancel = () => {
    shared.query('SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [tag]).catch(() => undefined);
  };
  signal.addEventListener('abort', cancel, { once: true });
  try {
    return await work(own);
  } finally {
    signal.removeEventListener('abort', cancel);
    // end() waits for every client to come back; one held by a stuck statement must not hold the activity.
    await Promise.race([own.end(), new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
  }
}
