import { once } from 'node:events';
import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { OutputStore } from '../src/output/output-store';
import { readSnapshotPage, type Cursor } from '../src/store/snapshot-reader';
import type { ExportPartitionInput, ExportPartitionResult, PartFile } from '../workflows/types';

/** Heartbeat details: where a retry resumes (everything up to `cursor` is in `parts`). */
interface PartitionProgress {
  cursor?: Cursor;
  parts: PartFile[];
}

export const partKey = (exportId: string, type: string, partition: number, part: number) =>
  `${exportId}/${type}-${String(partition).padStart(4, '0')}-${String(part).padStart(4, '0')}.ndjson`;

/**
 * Streams one partition of one type into NDJSON parts, rotated by count and size. After each
 * finished part it heartbeats its cursor; a retry resumes there and rewrites the same part
 * names, so nothing is duplicated. Memory holds one page of rows at a time.
 */
export async function exportPartition(
  deps: { pool: Pool; output: OutputStore },
  input: ExportPartitionInput,
): Promise<ExportPartitionResult> {
  const context = Context.current();
  const resumed = context.info.heartbeatDetails as PartitionProgress | undefined;
  const progress: PartitionProgress = resumed ?? { cursor: input.after, parts: [] };
  const scope = { tenant: input.tenant, resourceType: input.type, transactionTime: input.transactionTime, since: input.since, until: input.until };

  let position = progress.cursor; // the last row read
  let writer: ReturnType<OutputStore['createWriter']> | undefined;
  let part: PartFile | undefined;
  let pending: string[] = []; // lines of the current part not yet handed to the writer

  const write = async () => {
    if (pending.length === 0) return;
    const chunk = pending.join('');
    pending = [];
    if (!writer!.stream.write(chunk)) await once(writer!.stream, 'drain');
  };
  const finishPart = async (cursor: Cursor) => {
    await write();
    writer!.stream.end();
    await writer!.done;
    progress.parts.push(part!);
    progress.cursor = cursor;
    writer = undefined;
    part = undefined;
    context.heartbeat(progress);
  };
  const readPage = (after: Cursor | undefined) => {
    const reading = readSnapshotPage(deps.pool, scope, { after, upTo: input.upTo }, input.pageSize);
    reading.catch(() => undefined); // a prefetch abandoned by cancellation must not go unhandled
    return reading;
  };

  try {
    let page = readPage(position);
    for (;;) {
      context.heartbeat(progress); // liveness; cancellation arrives in its response
      context.cancellationSignal.throwIfAborted();
      const rows = await page;
      const last = rows[rows.length - 1];
      // Read the next page while this one is written.
      const more = rows.length === input.pageSize;
      if (more) page = readPage({ lastUpdated: last.lastUpdated, id: last.id });
      for (const row of rows) {
        if (!writer) {
          const key = partKey(input.exportId, input.type, input.partition, progress.parts.length);
          writer = deps.output.createWriter(key);
          writer.done.catch(() => undefined); // awaited in finishPart
          part = { type: input.type, key, count: 0, bytes: 0 };
        }
        const line = row.body + '\n';
        const bytes = Buffer.byteLength(line);
        pending.push(line);
        part!.count++;
        part!.bytes += bytes;
        position = { lastUpdated: row.lastUpdated, id: row.id };
        if (part!.count >= input.maxPartResources || part!.bytes >= input.maxPartBytes) await finishPart(position);
      }
      if (writer) await write();
      if (!more) break;
    }
    if (writer) await finishPart(position!);
    return { type: input.type, partition: input.partition, parts: progress.parts };
  } catch (err) {
    writer?.stream.destroy();
    throw err;
  }
}
