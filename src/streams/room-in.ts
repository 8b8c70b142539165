import { once } from 'node:events';
import type { Writable } from 'node:stream';

const CLOSED = 'the output stream closed while it was being written';

/**
 * Until `stream` takes more after a write returned false. Rejects when it fails or closes
 * first: a stream that failed before the wait began (the disk filled up) never drains and emits
 * no second error, and waiting for it would hang the export until its heartbeat timed out.
 */
export async function roomIn(stream: Writable): Promise<void> {
  if (stream.destroyed) throw stream.errored ?? new Error(CLOSED);
  const waiting = new AbortController();
  try {
    await Promise.race([
      once(stream, 'drain', { signal: waiting.signal }),
      once(stream, 'close', { signal: waiting.signal }).then(() => Promise.reject(stream.errored ?? new Error(CLOSED))),
    ]);
  } finally {
    waiting.abort();
  }
}
