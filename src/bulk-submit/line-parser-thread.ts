/** A parser thread of line-parser.ts: each message a batch of lines, each answer its parsed lines (or why it could not). */
import { parentPort } from 'node:worker_threads';
import { parseLines, type LineBatch } from './submitted-lines';

parentPort!.on('message', ({ id, batch }: { id: number; batch: LineBatch }) => {
  try {
    parentPort!.postMessage({ id, parsed: parseLines(batch) });
  } catch (err) {
    parentPort!.postMessage({ id, failed: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
});
