/**
 * Liveness apart from data flow. Temporal learns that an activity lives, and the activity learns
 * that it was cancelled, only through heartbeats; work that can sit inside one long query
 * (planning, a slow search, a lock wait) would look dead and never hear a DELETE. `heartbeating`
 * beats on a timer while the work runs; `cancellableQueries` has PostgreSQL cancel the work's
 * running statements the moment the activity is cancelled.
 */
import { Context } from '@temporalio/activity';
import type { Pool, PoolClient } from 'pg';

/**
 * A quarter of the heartbeat timeout (so three beats may be lost), between 0.5 and 2 s: a
 * DELETE reaches the activity only with the answer to a heartbeat, so the beat, not the
 * timeout, sets how soon it stops (the worker sends beats at most 2 s apart anyway).
 */
export function heartbeatEveryMs(heartbeatTimeoutMs: number | undefined): number {
  return Math.min(2_000, Math.max(500, (heartbeatTimeoutMs ?? 40_000) / 4));
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

/** A client's server process, which pg_cancel_backend names. */
const backendOf = (client: PoolClient) => (client as unknown as { processID: number }).processID;

/**
 * Runs `work` on the shared pool through a view of it that remembers the server processes of
 * the clients the work holds, so that an abort cancels exactly their statements
 * (pg_cancel_backend) instead of waiting for them. No connection of its own: a partition
 * opening one cost 20-40 ms. A statement that ends in the instant of the abort may be followed
 * on its connection by another activity's, which the cancel then stops: that activity fails one
 * attempt and is retried.
 */
export async function cancellableQueries<T>(shared: Pool, signal: AbortSignal, work: (own: Pool) => Promise<T>): Promise<T> {
  signal.throwIfAborted();
  const held = new Set<number>();
  const connect = async (): Promise<PoolClient> => {
    const client = await shared.connect();
    const backend = backendOf(client);
    held.add(backend);
    const release = client.release;
    // The pool gives the client a new release at its next checkout; this one only forgets it here.
    client.release = (err?: Error | boolean) => {
      held.delete(backend);
      client.release = release;
      return release.call(client, err);
    };
    return client;
  };
  const query = async (...args: Parameters<Pool['query']>) => {
    const client = await connect();
    try {
      return await (client.query as (...a: unknown[]) => Promise<unknown>)(...args);
    } finally {
      client.release();
    }
  };
  const own = new Proxy(shared, { get: (target, property, receiver) => (property === 'connect' ? connect : property === 'query' ? query : Reflect.get(target, property, receiver)) });
  const cancel = () => {
    if (held.size > 0) shared.query('SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS pid', [[...held]]).catch(() => undefined);
  };
  signal.addEventListener('abort', cancel, { once: true });
  try {
    return await work(own);
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}
