/**
 * One partition of one view (`$sql-export`): streams the type's bodies in the window, evaluates
 * the view on each and writes its rows into parts rotated by row count and size, between
 * resources. Each part is a whole file of its format (row-parts.ts). After each finished part it heartbeats its cursor; a retry
 * resumes there and rewrites the same part names, so no row is written twice.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import { OperationOutcomeError } from '../src/fhir/outcome-error';
import type { Cursor } from '../src/contracts/export-window';
import { VIEW_EVALUATION_FAILURE, type ViewPartitionInput, type ViewPartitionResult } from '../src/contracts/view-export';
import { viewPartKey } from '../src/output/file-keys';
import type { OutputStore } from '../src/output/output-store';
import { resourceCursor, streamSnapshotResources } from '../src/store/snapshot-stream';
import { viewRows } from '../src/views/run-view';
import { compileView } from '../src/views/view-definition';
import { PartitionRun } from './partition-run';
import { rowParts } from './row-parts';

export async function exportViewPartition(deps: { pool: Pool; output: OutputStore }, input: ViewPartitionInput): Promise<ViewPartitionResult> {
  const view = compileView(input.view.definition); // once per partition, not per resource
  const run = new PartitionRun<Cursor & { resources?: number }>(input.partition.after);
  const { progress } = run;
  let resources = progress.cursor?.resources ?? 0;
  const parts = rowParts({
    output: deps.output,
    keyOf: (part) => viewPartKey(input.location, input.view.name, input.partition.partition, part, input.format),
    fileType: input.view.name,
    limits: input.limits,
    parts: progress.parts,
    columns: view.columns,
    format: input.format,
    header: input.header,
  });

  try {
    const scope = { ...input.window, resourceType: view.resource };
    const after = progress.cursor && { lastUpdated: progress.cursor.lastUpdated, id: progress.cursor.id };
    for await (const batch of streamSnapshotResources(deps.pool, scope, { after, upTo: input.partition.upTo })) {
      run.alive();
      for (const resource of batch) {
        resources++;
        const writing = parts.add(viewRows(view, resource));
        if (writing) await writing;
        // Parts end between resources: a retry resumes after the last resource of a finished part.
        if (parts.isFull) {
          await parts.finish();
          run.partDone({ ...resourceCursor(resource), resources });
        }
      }
      await parts.flush();
    }
    if (parts.isOpen) await parts.finish();
    return { view: input.view.name, partition: input.partition.partition, resources, parts: progress.parts };
  } catch (err) {
    parts.destroy();
    // The view cannot be evaluated on this data (a plain column with several values, a where that
    // is not boolean): retrying changes nothing, and the export fails with the reason.
    if (err instanceof OperationOutcomeError) throw ApplicationFailure.nonRetryable(err.message, VIEW_EVALUATION_FAILURE, err.issues);
    throw err;
  }
}
