/**
 * Parses submitted lines off the worker's main thread: JSON.parse and preparing each resource cost
 * as much CPU as writing it, and the files a worker loads at once share that one thread with
 * the downloads and writes. One parser thread per worker process, started on first use and
 * again after it dies; batches are answered in the order they were sent. Without the compiled
 * thread (TypeScript sources, as in unit tests) lines are parsed in place.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { parseLines, type LineBatch, type ParsedLines } from './submitted-lines';

const PARSER_THREAD = path.join(__dirname, 'line-parser-thread.js');
const THREADED = existsSync(PARSER_THREAD);

interface Waiting {
  resolve: (parsed: ParsedLines) => void;
  reject: (err: Error) => void;
}

let thread: Worker | undefined;
const waiting = new Map<number, Waiting>();
let nextId = 0;

function startThread(): Worker {
  const started = new Worker(PARSER_THREAD);
  started.unref(); // an idle parser keeps no process alive
  started.on('message', (answer: { id: number; parsed?: ParsedLines; failed?: string }) => {
    const entry = waiting.get(answer.id);
    waiting.delete(answer.id);
    if (answer.parsed) entry?.resolve(answer.parsed);
    else entry?.reject(new Error(`the line parser failed: ${answer.failed}`));
  });
  const fail = (err: Error) => {
    if (thread !== started) return; // already failed (an error is followed by an exit); the batches waiting now are a new thread's
    thread = undefined;
    for (const entry of waiting.values()) entry.reject(err);
    waiting.clear();
  };
  started.on('error', fail);
  started.on('exit', (code) => fail(new Error(`the line parser stopped (exit code ${code})`)));
  return started;
}

/** The batch's lines parsed and prepared (its bytes are handed over: the caller must not reuse them). */
export function parseOffThread(batch: LineBatch): Promise<ParsedLines> {
  if (!THREADED) return Promise.resolve().then(() => parseLines(batch));
  thread ??= startThread();
  const id = nextId++;
  const answer = new Promise<ParsedLines>((resolve, reject) => waiting.set(id, { resolve, reject }));
  thread.postMessage({ id, batch }, [batch.bytes.buffer as ArrayBuffer]);
  return answer;
}
