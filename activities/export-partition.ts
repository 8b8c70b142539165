import { once } from 'node:events';
import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import { keptElements, subsetResource } from '../src/fhir/elements';
import type { OutputStore } from '../src/output/output-store';
import type { Cursor } from '../src/store/snapshot-scope';
import { streamSnapshot } from '../src/store/snapshot-stream';

const NEWLINE = Buffer.from('\n');
import type { ExportPartitionInput, ExportPartitionResult, PartFile } from '../workflows/types';

/** Heartbeat details: where a retry resumes (everything up to `cursor` is in `parts`). */
interface PartitionProgress {
  cursor?: Cursor;
  parts: PartFile[];
}

export const partKey = (exportId: string, type: string, partition: number, part: number, deletions = false) =>
  `${exportId}/${type}${deletions ? '-deleted' : ''}-${String(partition).padStart(4, '0')}-${String(part).padStart(4, '0')}.ndjson`;

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
  const scope = {
    tenant: input.tenant,
    resourceType: input.type,
    transactionTime: input.transactionTime,
    since: input.since,
    until: input.until,
    compartment: input.compartment,
    deletions: input.deletions,
  };

  // _elements: decode, subset and re-encode each resource; otherwise bodies pass through untouched.
  const keep = keptElements(input.elements, input.type);
  const keepSet = keep && new Set(keep);
  const lineOf = (body: Buffer): Buffer =>
    keepSet ? Buffer.from(JSON.stringify(subsetResource(JSON.parse(body.toString('utf8')) as Record<string, unknown>, keepSet))) : body;

  let position = progress.cursor; // the last row read
  let writer: ReturnType<OutputStore['createWriter']> | undefined;
  let part: PartFile | undefined;
  let pending: Buffer[] = []; // lines of the current part not yet handed to the writer

  const write = async () => {
    if (pending.length === 0) return;
    const chunk = Buffer.concat(pending);
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

  try {
    let lastBeat = 0;
    for await (const rows of streamSnapshot(deps.pool, scope, { after: position, upTo: input.upTo })) {
      // Liveness at most once a second: each call converts the details, and chunks come by the thousand.
      // Cancellation arrives in a heartbeat's response.
      if (Date.now() - lastBeat >= 1000) {
        context.heartbeat(progress);
        lastBeat = Date.now();
      }
      context.cancellationSignal.throwIfAborted();
      for (const row of rows) {
        if (!writer) {
          const key = partKey(input.exportId, input.type, input.partition, progress.parts.length, input.deletions);
          writer = deps.output.createWriter(key);
          writer.done.catch(() => undefined); // awaited in finishPart
          part = { type: input.deletions ? 'Bundle' : input.type, key, count: 0, bytes: 0 };
        }
        const line = lineOf(row.body);
        pending.push(line, NEWLINE);
        part!.count++;
        part!.bytes += line.length + 1;
        position = row.cursor;
        if (part!.count >= input.maxPartResources || part!.bytes >= input.maxPartBytes) await finishPart(position);
      }
      if (writer) await write();
    }
    if (writer) await finishPart(position!);
    return { type: input.type, partition: input.partition, deletions: input.deletions, parts: progress.parts };
  } catch (err) {
    writer?.stream.destroy();
    throw err;
  }
}
