/**
 * One submitted NDJSON file into the store: downloaded as a stream (never whole), cut into lines
 * with their byte offsets, parsed on the parser thread (line-parser.ts) and written in bounded
 * batches, each batch committed before the offset after it is reported as the resume point. A
 * dropped connection resumes at that offset with an HTTP range request (from the start, skipping
 * what was committed, where the provider ignores ranges); a retried activity resumes where the
 * last attempt's heartbeat said. The store writes nothing for a resource whose content it
 * already holds, so a line loaded twice leaves the store as once. The file must end exactly at
 * the size the provider announced.
 */
import type { LineIssue, FileLoad, ImportMode } from '../contracts/bulk-submit';
import type { ResourceStore, WriteOperation } from '../store/resource-store';
import { parseOffThread } from './line-parser';
import { ProviderRefusal } from './provider-requests';
import type { LineBatch, ParsedLines } from './submitted-lines';

/** Where a file's load stands: all of it up to `offset` is committed. Heartbeated as the resume point. */
export interface LoadProgress extends Omit<FileLoad, 'issuesKey'> {
  offset: number;
  issues: LineIssue[];
}

export const MAX_KEPT_ISSUES = 1000;
const BATCH_RESOURCES = 1000;
const BATCH_BYTES = 8 * 1024 * 1024;
/** Connection drops within one attempt resumed in place before the attempt gives up (and Temporal retries it). */
const IN_PLACE_RESUMES = 5;

export interface FileToLoad {
  url: string;
  type: string;
  headers: Record<string, string>;
  mode: ImportMode;
}

export interface LoaderHooks {
  /** Records the keys a batch wrote or kept (for a later replacing manifest); done before the batch's offset is committed. */
  recordKeys(type: string, ids: string[]): Promise<void>;
  /** A batch is committed: the progress to resume from. */
  committed(progress: LoadProgress): void;
  signal?: AbortSignal;
}

export const emptyProgress = (): LoadProgress => ({ offset: 0, bytes: 0, lines: 0, written: 0, unchanged: 0, kept: 0, errors: 0, issues: [] });

/** Lines read but not yet committed: written as one batch. */
interface PendingBatch {
  lines: Buffer[];
  numbers: number[];
  bytes: number;
  /** The offset just after the batch's last line, and the line count there. */
  endOffset: number;
  endLine: number;
}

const pendingAt = (endOffset: number, endLine: number): PendingBatch => ({ lines: [], numbers: [], bytes: 0, endOffset, endLine });

/** The batch's lines in one buffer of their own (it is handed to the parser thread). */
function lineBatch(type: string, pending: PendingBatch): LineBatch {
  const bytes = new Uint8Array(pending.bytes);
  const ends: number[] = [];
  let at = 0;
  for (const line of pending.lines) {
    bytes.set(line, at);
    at += line.length;
    ends.push(at);
  }
  return { type, bytes, ends, numbers: pending.numbers };
}

/** Whether a line holds only whitespace (skipped, as NDJSON readers do). */
function isBlank(line: Buffer): boolean {
  for (const byte of line) if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) return false;
  return true;
}

/** Loads `file` from `start` on; returns the progress at its end (the whole file). */
export async function loadFile(store: ResourceStore, file: FileToLoad, start: LoadProgress, hooks: LoaderHooks): Promise<LoadProgress> {
  const progress: LoadProgress = structuredClone(start);
  let drops = 0;
  for (;;) {
    try {
      return await loadFrom(store, file, progress, hooks);
    } catch (err) {
      if (err instanceof ProviderRefusal || hooks.signal?.aborted || ++drops > IN_PLACE_RESUMES) throw err;
      // The connection dropped: ask again from the last committed line.
    }
  }
}

async function loadFrom(store: ResourceStore, file: FileToLoad, progress: LoadProgress, hooks: LoaderHooks): Promise<LoadProgress> {
  const headers: Record<string, string> = { ...file.headers, Accept: 'application/fhir+ndjson', 'Accept-Encoding': 'identity' };
  if (progress.offset > 0) headers.Range = `bytes=${progress.offset}-`;
  const response = await fetch(file.url, { headers, redirect: 'manual', signal: hooks.signal });
  if (response.status !== 200 && response.status !== 206) {
    await response.body?.cancel();
    const message = `the file ${file.url} answered ${response.status}`;
    if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429 && response.status !== 416) throw new ProviderRefusal(message);
    throw new Error(message);
  }
  // Where this response's first byte lies in the file, and how long the file is.
  let position = 0;
  let size: number | undefined;
  if (response.status === 206) {
    const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
    if (!range || Number(range[1]) !== progress.offset) {
      await response.body?.cancel();
      throw new ProviderRefusal(`the file ${file.url} answered a range other than the one asked for (${response.headers.get('content-range')})`);
    }
    position = progress.offset;
    if (range[2] !== '*') size = Number(range[2]);
  } else {
    const length = response.headers.get('content-length');
    if (length !== null) size = Number(length);
  }
  if (!response.body) throw new Error(`the file ${file.url} answered without a body`);

  let carry: Buffer = Buffer.alloc(0);
  let carryStart = position; // the file offset of carry's first byte
  // A range answer goes on from the committed line; a whole answer is counted again from the first.
  let line = response.status === 206 ? progress.lines : 0;
  let batch = pendingAt(progress.offset, line);
  let writing: Promise<void> = Promise.resolve();

  const commit = async (done: PendingBatch, parsed: ParsedLines) => {
    const counts = await writeBatch(store, file, parsed.ops, hooks);
    progress.written += counts.written;
    progress.unchanged += counts.unchanged;
    progress.kept += counts.kept;
    progress.errors += parsed.issues.filter((i) => i.severity === 'error').length;
    for (const found of parsed.issues) if (progress.issues.length < MAX_KEPT_ISSUES) progress.issues.push(found);
    progress.offset = done.endOffset;
    progress.lines = done.endLine;
    progress.bytes = done.endOffset;
    hooks.committed(progress);
  };
  // One batch is parsed (on the parser thread) while the one before it writes; batches commit in file order.
  const flush = async () => {
    const done = batch;
    batch = pendingAt(done.endOffset, done.endLine);
    const parsed = done.lines.length > 0 ? parseOffThread(lineBatch(file.type, done)) : Promise.resolve({ ops: [], issues: [] });
    parsed.catch(() => undefined); // awaited below; a failure surfaces there
    await writing;
    writing = parsed.then((lines) => commit(done, lines));
    writing.catch(() => undefined); // awaited below; a failure surfaces there
  };

  const onLine = (bytes: Buffer, endOffset: number) => {
    line++;
    if (endOffset <= progress.offset) return; // committed by an earlier response (a provider that ignores ranges)
    batch.endOffset = endOffset;
    batch.endLine = line;
    if (isBlank(bytes)) return;
    batch.lines.push(bytes);
    batch.numbers.push(line);
    batch.bytes += bytes.length;
  };

  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      let from = 0;
      for (let nl = chunk.indexOf(10, from); nl !== -1; nl = chunk.indexOf(10, from)) {
        const piece = chunk.subarray(from, nl + 1);
        const whole = carry.length > 0 ? Buffer.concat([carry, piece]) : piece;
        onLine(whole, carryStart + whole.length);
        carryStart += whole.length;
        carry = Buffer.alloc(0);
        from = nl + 1;
      }
      if (from < chunk.length) carry = Buffer.concat([carry, chunk.subarray(from)]);
      if (batch.lines.length >= BATCH_RESOURCES || batch.bytes >= BATCH_BYTES) await flush();
    }
  } catch (err) {
    // The batch being written still counts: the next request resumes after it, never beside it.
    await writing.catch(() => undefined);
    throw err;
  } finally {
    reader.releaseLock();
  }
  if (carry.length > 0) onLine(carry, carryStart + carry.length); // a last line without a newline
  const received = carry.length > 0 ? carryStart + carry.length : carryStart;
  if (size !== undefined && received !== size) throw new Error(`the file ${file.url} ended after ${received} of its ${size} bytes`);
  await flush();
  await writing;
  return progress;
}

/** Writes a batch (in `merge`, only resources the store does not hold) and records its keys. */
async function writeBatch(store: ResourceStore, file: FileToLoad, ops: WriteOperation[], hooks: LoaderHooks): Promise<{ written: number; unchanged: number; kept: number }> {
  if (ops.length === 0) return { written: 0, unchanged: 0, kept: 0 };
  const ids = ops.map((op) => (op.op === 'put-prepared' ? op.prepared.id : ''));
  const write = async () => {
    if (file.mode !== 'merge') return { results: await store.write(ops), kept: 0 };
    const held = await store.existingIds(file.type, ids);
    const toWrite = ops.filter((op) => op.op === 'put-prepared' && !held.has(op.prepared.id));
    return { results: toWrite.length > 0 ? await store.write(toWrite) : [], kept: ops.length - toWrite.length };
  };
  // Keys and resources on two connections at once: the batch counts as committed (its offset
  // reported) only once both are, so a failure of either writes the batch again, which changes nothing.
  // Both settle before a failure surfaces: a retry never writes beside a write still running.
  const [recorded, wrote] = await Promise.allSettled([hooks.recordKeys(file.type, ids), write()]);
  if (recorded.status === 'rejected') throw recorded.reason;
  if (wrote.status === 'rejected') throw wrote.reason;
  const { results, kept } = wrote.value;
  let written = 0;
  let unchanged = 0;
  for (const r of results) {
    if (r.outcome === 'created' || r.outcome === 'updated') written++;
    else if (r.outcome === 'unchanged') unchanged++;
  }
  return { written, unchanged, kept };
}
