/**
 * `bulkflow import`: streams Bundles, NDJSON and single resources (optionally gzipped) into the
 * store in batches. urn:uuid fullUrls and references become `Type/id`, also across files (a
 * resource whose urn:uuid target is not known yet waits until the end); conditional references
 * stay as written and are reported. Bad files and lines are reported and skipped. Files are
 * read and resources prepared on a worker thread (import-reader.ts) while this one writes.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { PipelinedWriter } from '../store/pipelined-writer';
import type { ResourceStore } from '../store/resource-store';
import { preparedPut, readImport, type ImportEvent, type Skipped } from './import-reader';
import { rewriteReferences } from '../fhir/references';

export type { Skipped } from './import-reader';

export interface ImportSummary {
  files: number;
  /** Resources written (created or updated) by type. */
  written: Record<string, number>;
  unchanged: number;
  deleted: number;
  skipped: Skipped[];
  conditionalReferences: number;
  /** urn:uuid references that matched nothing, with the resource that holds them. */
  unresolvedReferences: Array<{ resource: string; reference: string }>;
}

export interface ImportProgress {
  file: string;
  filesDone: number;
  filesTotal: number;
  resources: number;
}

export interface ImportOptions {
  batchSize?: number;
  onProgress?: (progress: ImportProgress) => void;
  /** Read on a worker thread (default: when the compiled reader is there, as in `bulkflow import`). */
  readerThread?: boolean;
}

/** The compiled reader thread (absent when running from TypeScript sources, as in unit tests). */
const READER_THREAD = path.join(__dirname, 'import-reader-thread.js');

export async function importPaths(store: ResourceStore, paths: string[], options: ImportOptions = {}): Promise<ImportSummary> {
  const batchSize = options.batchSize ?? 2000;
  const summary: ImportSummary = { files: 0, written: {}, unchanged: 0, deleted: 0, skipped: [], conditionalReferences: 0, unresolvedReferences: [] };
  const writer = new PipelinedWriter(
    store,
    (results) => {
      for (const r of results) {
        if (r.outcome === 'created' || r.outcome === 'updated') summary.written[r.resourceType] = (summary.written[r.resourceType] ?? 0) + 1;
        else if (r.outcome === 'unchanged') summary.unchanged++;
        else if (r.outcome === 'deleted') summary.deleted++;
      }
    },
    batchSize,
  );
  const threaded = options.readerThread ?? existsSync(READER_THREAD);
  const chunkSize = Math.max(1, Math.min(500, batchSize));
  const events = threaded ? readOnThread(paths, chunkSize) : readImport(paths, chunkSize);
  // Progress after every batch too, so a single large file shows its throughput as it goes.
  let last: ImportProgress = { file: '', filesDone: 0, filesTotal: 0, resources: 0 };
  for await (const event of events) {
    switch (event.kind) {
      case 'files':
        last = { ...last, filesTotal: event.total };
        break;
      case 'ops':
        for (const operation of event.ops) await writer.add(operation);
        last = { ...last, resources: last.resources + event.ops.length };
        options.onProgress?.(last);
        break;
      case 'skipped':
        summary.skipped.push(event.skipped);
        break;
      case 'file-done':
        summary.files++;
        last = { file: event.file, filesDone: event.filesDone, filesTotal: event.filesTotal, resources: event.resources };
        options.onProgress?.(last);
        break;
      case 'end': {
        await writer.finish();
        summary.conditionalReferences = event.conditionalReferences;
        await writeDeferred(store, writer, event, summary);
        await writer.finish();
      }
    }
  }
  return summary;
}

/** Resources whose urn:uuid references named nothing read before them: resolved now, as far as they can be. */
async function writeDeferred(store: ResourceStore, writer: PipelinedWriter, end: Extract<ImportEvent, { kind: 'end' }>, summary: ImportSummary): Promise<void> {
  if (end.deferred.length === 0) return;
  const urnTargets = new Map(end.urnTargets);
  // Targets never seen as a fullUrl may already be stored under the uuid as their id.
  const unknownIds = new Set<string>();
  for (const { resource } of end.deferred) {
    rewriteReferences(structuredClone(resource), (urn) => {
      if (!urnTargets.has(urn)) unknownIds.add(urn.replace(/^urn:uuid:/, ''));
      return undefined;
    });
  }
  const stored = await store.currentTypesOfIds([...unknownIds]);
  for (const [id, types] of stored) if (types.length === 1) urnTargets.set(`urn:uuid:${id}`, `${types[0]}/${id}`);
  for (const { resource } of end.deferred) {
    const scan = rewriteReferences(resource, (urn) => urnTargets.get(urn));
    for (const reference of scan.unresolved) {
      summary.unresolvedReferences.push({ resource: `${resource.resourceType}/${resource.id}`, reference });
    }
    await writer.add(preparedPut(resource));
  }
}

/** The reader's events from a worker thread; each batch of operations is acknowledged once written to the writer. */
async function* readOnThread(paths: string[], chunkSize: number): AsyncGenerator<ImportEvent> {
  const worker = new Worker(READER_THREAD, { workerData: { paths, chunkSize, window: 8 } });
  const queue: Array<ImportEvent | { kind: 'failed'; message: string } | { kind: 'exit' }> = [];
  let wake: (() => void) | undefined;
  const push = (item: (typeof queue)[number]) => {
    queue.push(item);
    wake?.();
  };
  worker.on('message', push);
  worker.on('error', (err) => push({ kind: 'failed', message: err.stack ?? err.message }));
  worker.on('exit', () => push({ kind: 'exit' }));
  try {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const item = queue.shift()!;
      if (item.kind === 'failed') throw new Error(`the import reader failed: ${item.message}`);
      if (item.kind === 'exit') throw new Error('the import reader stopped before the end');
      yield item;
      if (item.kind === 'ops') worker.postMessage('credit');
      if (item.kind === 'end') return;
    }
  } finally {
    await worker.terminate();
  }
}
