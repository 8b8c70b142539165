/**
 * One partition of one view (`$sql-export`): streams the type's bodies in the window, evaluates
 * the view on each and writes its rows into parts rotated by row count and size, between
 * resources. Each part is a whole file of its format: NDJSON lines; CSV with a header row unless
 * `header=false`; JSON one array. After each finished part it heartbeats its cursor; a retry
 * resumes there and rewrites the same part names, so no row is written twice.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import { OperationOutcomeError } from '../src/fhir/outcome-error';
import type { Cursor } from '../src/contracts/export-window';
import { VIEW_EVALUATION_FAILURE, type ViewPartitionInput, type ViewPartitionResult } from '../src/contracts/view-export';
import { viewPartKey } from '../src/output/file-keys';
import type { OutputStore } from '../src/output/output-store';
import { rowCursor, streamSnapshot } from '../src/store/snapshot-stream';
import { rowEncoder } from '../src/views/row-formats';
import { viewRows } from '../src/views/run-view';
import { compileView } from '../src/views/view-definition';
import { PartitionRun } from './partition-run';
import { PartWriter } from './part-writer';

export async function exportViewPartition(deps: { pool: Pool; output: OutputStore }, input: ViewPartitionInput): Promise<ViewPartitionResult> {
  const view = compileView(input.view.definition); // once per partition, not per resource
  const run = new PartitionRun<Cursor & { resources?: number }>(input.partition.after);
  const { progress } = run;
  let resources = progress.cursor?.resources ?? 0;
  const encoder = rowEncoder(input.format, view.columns, { header: input.header });
  const parts = new PartWriter(
    deps.output,
    (part) => viewPartKey(input.location, input.view.name, input.partition.partition, part, input.format),
    input.view.name,
    input.limits,
    progress.parts,
  );
  let rowsInPart = 0;
  const text = (s: string) => Buffer.from(s, 'utf8');
  const finishPart = async (cursor: Cursor) => {
    if (encoder.end) parts.addLines(text(encoder.end), 0);
    await parts.finish();
    rowsInPart = 0;
    run.partDone({ ...cursor, resources });
  };

  try {
    const scope = { ...input.window, resourceType: view.resource };
    for await (const batch of streamSnapshot(deps.pool, scope, { after: progress.cursor && { lastUpdated: progress.cursor.lastUpdated, id: progress.cursor.id }, upTo: input.partition.upTo })) {
      run.alive();
      for (const row of batch) {
        resources++;
        const rows = viewRows(view, JSON.parse(row.body.toString('utf8')) as Record<string, unknown>);
        if (rows.length > 0) {
          if (!parts.isOpen && encoder.start) parts.addLines(text(encoder.start), 0);
          parts.addLines(text(rows.map((r) => encoder.row(r, rowsInPart++)).join('')), rows.length);
        }
        // Parts end between resources: a retry resumes after the last resource of a finished part.
        if (parts.isFull) await finishPart(rowCursor(row));
      }
      await parts.flush();
    }
    if (parts.isOpen) {
      if (encoder.end) parts.addLines(text(encoder.end), 0);
      await parts.finish();
    }
    return { view: input.view.name, partition: input.partition.partition, resources, parts: progress.parts };
  } catch (err) {
    parts.destroy();
    // The view cannot be evaluated on this data (a plain column with several values, a where that
    // is not boolean): retrying changes nothing, and the export fails with the reason.
    if (err instanceof OperationOutcomeError) throw ApplicationFailure.nonRetryable(err.message, VIEW_EVALUATION_FAILURE, err.issues);
    throw err;
  }
}
