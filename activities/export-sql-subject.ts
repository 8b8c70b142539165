/**
 * One SQL subject of a `$sql-export`: its tables made from the store at the job's snapshot
 * (narrowed as the job is), its SQL run in a fresh locked engine, its rows streamed into part
 * files as they come. A retry does the subject again from the start and writes the same part
 * names, so the manifest names each file once. A cancel interrupts the engine; a query the
 * engine refuses (a SQL error, a cap, the time or memory limit) fails the export with its
 * reason: the same query at the same snapshot would fail again.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import { VIEW_EVALUATION_FAILURE, type SqlSubjectInput, type SqlSubjectResult } from '../src/contracts/view-export';
import type { PartFile } from '../src/contracts/bulk-export';
import { OperationOutcomeError } from '../src/fhir/outcome-error';
import { viewPartKey } from '../src/output/file-keys';
import type { OutputStore } from '../src/output/output-store';
import { SqlRefused, type EngineLimits } from '../src/sql/engine-types';
import { writerColumns } from '../src/sql/result-columns';
import { runResolvedSql } from '../src/sql/sql-subject';
import { streamSnapshotResources } from '../src/store/snapshot-stream';
import { rowParts } from './row-parts';

/** What no retry mends, as the failure the result URL answers with (422). */
function lasting(err: unknown): unknown {
  if (err instanceof SqlRefused) return ApplicationFailure.nonRetryable(`SQL subject: ${err.message}`, VIEW_EVALUATION_FAILURE, [{ severity: 'error', code: err.code, diagnostics: err.message }]);
  if (err instanceof OperationOutcomeError) return ApplicationFailure.nonRetryable(err.message, VIEW_EVALUATION_FAILURE, err.issues);
  return err;
}

export async function exportSqlSubject(deps: { pool: Pool; output: OutputStore; sqlLimits: EngineLimits }, input: SqlSubjectInput, signal: AbortSignal): Promise<SqlSubjectResult> {
  const { subject, location } = input;
  // The engine works on its own threads: the event loop (heartbeats, other activities) must stay free meanwhile.
  const eventLoop = monitorEventLoopDelay({ resolution: 20 });
  eventLoop.enable();
  try {
    return await run(deps, input, signal, eventLoop);
  } finally {
    eventLoop.disable();
  }
}

async function run(deps: { pool: Pool; output: OutputStore; sqlLimits: EngineLimits }, input: SqlSubjectInput, signal: AbortSignal, eventLoop: { max: number }): Promise<SqlSubjectResult> {
  const { subject, location } = input;
  const resourcesOf = (resourceType: string) => streamSnapshotResources(deps.pool, { ...input.window, resourceType }, {});
  const result = await runResolvedSql(subject, resourcesOf, deps.sqlLimits, { signal }).catch((err: unknown) => Promise.reject(lasting(err)));
  const parts: PartFile[] = [];
  const writer = rowParts({
    output: deps.output,
    keyOf: (part) => viewPartKey(location, subject.name, 0, part, input.format),
    fileType: subject.name,
    limits: input.limits,
    parts,
    columns: writerColumns(result.columns),
    format: input.format,
    header: input.header,
  });
  let rows = 0;
  let sqlMs = 0;
  let writeMs = 0;
  const chunks = result.chunks[Symbol.asyncIterator]();
  try {
    for (;;) {
      const asked = performance.now();
      const next = await chunks.next();
      const got = performance.now();
      sqlMs += got - asked;
      if (next.done) break;
      for (const row of next.value) {
        const writing = writer.add([row]);
        if (writing) await writing;
        if (writer.isFull) await writer.finish();
      }
      rows += next.value.length;
      await writer.flush();
      writeMs += performance.now() - got;
    }
    if (writer.isOpen) await writer.finish();
  } catch (err) {
    writer.destroy();
    throw signal.aborted ? signal.reason : lasting(err);
  } finally {
    await result.close();
  }
  return { name: subject.name, rows, tableRows: result.stats.tableRows, parts, timings: { materialiseMs: Math.round(result.stats.materialiseMs), sqlMs: Math.round(sqlMs), writeMs: Math.round(writeMs), eventLoopMaxDelayMs: Math.round(eventLoop.max / 1e6) } };
}
