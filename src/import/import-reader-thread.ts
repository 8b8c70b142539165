/**
 * Runs an import's reader on a worker thread: parsing and preparing resources takes as much CPU
 * as writing them, and one thread doing both left the database waiting. At most `window`
 * batches of operations are unacknowledged at once, so memory does not grow with the input.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readImport } from './import-reader';

const { paths, chunkSize, window } = workerData as { paths: string[]; chunkSize: number; window: number };
let credits = window;
let wake: (() => void) | undefined;
parentPort!.on('message', (message) => {
  if (message === 'credit') {
    credits++;
    wake?.();
  }
});

(async () => {
  for await (const event of readImport(paths, chunkSize)) {
    if (event.kind === 'ops') {
      while (credits === 0) await new Promise<void>((resolve) => (wake = resolve));
      credits--;
    }
    parentPort!.postMessage(event);
  }
})().catch((err: unknown) => parentPort!.postMessage({ kind: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
