import type { Pool } from 'pg';
import { keptElements, subsetResource } from '../src/fhir/elements';
import { compileTypeFilter } from '../src/fhir/search/type-filter';
import { partKey } from '../src/output/file-keys';
import type { OutputStore } from '../src/output/output-store';
import type { Cursor } from '../src/contracts/export-window';
import { readPartitionInput } from '../src/contracts/legacy-shapes';
import { typeFilterSql } from '../src/store/search-sql';
import type { SnapshotScope } from '../src/store/snapshot-scope';
import { rowCursor, streamSnapshot, streamSnapshotLines, type StreamedRow } from '../src/store/snapshot-stream';
import type { ExportPartitionResult, OperationOutcomeIssueJson } from '../src/contracts/bulk-export';
import { PartitionRun } from './partition-run';
import { parseStoredBody, UnreadableResourceError } from '../src/store/stored-body';
import { PartWriter } from './part-writer';

/** A deletion as the Bulk Data IG reports it: a transaction Bundle with one DELETE entry. */
const deletionBundle = (type: string, id: string) =>
  JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'DELETE', url: `${type}/${id}` } }] });

const NEWLINE = 0x0a;

/**
 * Streams one partition of one type into NDJSON parts, rotated by count and size. After each
 * finished part it heartbeats its cursor; a retry resumes there and rewrites the same part
 * names, so nothing is duplicated. Memory holds one page of rows at a time.
 */
export async function exportPartition(
  deps: { pool: Pool; output: OutputStore },
  received: Parameters<typeof readPartitionInput>[0],
): Promise<ExportPartitionResult> {
  const input = readPartitionInput(received);
  const { type, deletions, recorded } = input.partition;
  const run = new PartitionRun<Cursor>(input.partition.after);
  const { progress } = run;
  const filter = compileTypeFilter(type, input.filters);
  const scope: SnapshotScope = {
    ...input.window,
    resourceType: type,
    deletions,
    recordedFor: recorded ? input.location.exportId : undefined,
    filterSql: deletions ? undefined : typeFilterSql(filter),
  };

  // Bodies pass through untouched unless _typeFilter must check them or _elements subsets them.
  const keep = deletions ? undefined : keptElements(input.elements, type);
  const keepSet = keep && new Set(keep);
  const checkEach = !filter.exact || (deletions && input.filters !== undefined);
  const parse = (body: Buffer) => parseStoredBody(body.toString('utf8'), type);
  /** Issues since the last finished part: they join the heartbeat with that part's cursor, so a retry finds them once. */
  let leftOut: OperationOutcomeIssueJson[] = [];
  const settleIssues = () => {
    if (leftOut.length > 0) (progress.issues ??= []).push(...leftOut);
    leftOut = [];
  };
  /** The NDJSON line for a row, or undefined when the row does not match the filter (or, lenient, cannot be read). */
  const lineOf = (body: Buffer, id: string | undefined): Buffer | undefined => {
    try {
      return rowLine(body, id);
    } catch (err) {
      if (!(input.lenient && err instanceof UnreadableResourceError)) throw err;
      const named = err.id === undefined && id !== undefined ? new UnreadableResourceError(type, id) : err;
      leftOut.push({ severity: 'error', code: 'processing', diagnostics: `${named.message}; left out` });
      return undefined;
    }
  };
  const rowLine = (body: Buffer, id: string | undefined): Buffer | undefined => {
    if (deletions) {
      // With a filter, `body` is the version the deletion ended: report it only if that matched.
      if (checkEach && body.length > 0 && !filter.matches(parse(body))) return undefined;
      return Buffer.from(deletionBundle(type, id!));
    }
    const resource = parse(body);
    if (checkEach && !filter.matches(resource)) return undefined;
    return keepSet ? Buffer.from(JSON.stringify(subsetResource(resource, keepSet))) : body;
  };

  let lastRow: StreamedRow | undefined; // the last row read; its cursor is worked out when a part ends
  const parts = new PartWriter(
    deps.output,
    (part) => partKey(input.location, type, input.partition.partition, part, deletions),
    deletions ? 'Bundle' : type,
    input.limits,
    progress.parts,
  );
  const finishPart = async () => {
    await parts.finish();
    settleIssues();
    run.partDone(lastRow && rowCursor(lastRow));
  };

  /** Whole lines passed through as they came: only the part limits are counted, line by line. */
  const addLines = async (piece: Buffer) => {
    for (let from = 0; from < piece.length; ) {
      const first = piece.indexOf(NEWLINE, from) + 1;
      if (parts.crowds(first - from)) await finishPart();
      const room = parts.room;
      let lines = 1;
      let lineStart = from;
      let at = first;
      while (at < piece.length && lines < room.resources) {
        const next = piece.indexOf(NEWLINE, at) + 1;
        if (next - from > room.bytes) break; // the part ends before a line that does not fit
        lineStart = at;
        at = next;
        lines++;
      }
      parts.addLines(piece.subarray(from, at), lines);
      lastRow = { body: piece.subarray(lineStart, at - 1) };
      from = at;
      if (parts.isFull) await finishPart();
    }
  };
  try {
    const range = { after: progress.cursor, upTo: input.partition.upTo };
    if (!deletions && !checkEach && !keepSet) {
      for await (const pieces of streamSnapshotLines(deps.pool, scope, range)) {
        run.alive();
        for (const piece of pieces) await addLines(piece);
        await parts.flush();
      }
    } else {
      // Lenient: rows come with their cursors, so an unreadable one is named and passed over.
      for await (const rows of streamSnapshot(deps.pool, scope, range, { endedBodies: checkEach && deletions, withCursors: input.lenient })) {
        run.alive();
        for (const row of rows) {
          const line = lineOf(row.body, row.cursor?.id);
          if (line && parts.crowds(line.length + 1)) await finishPart(); // lastRow is still the part's last row
          lastRow = row;
          if (!line) continue;
          parts.add(line);
          if (parts.isFull) await finishPart();
        }
        await parts.flush();
      }
    }
    if (parts.isOpen) await finishPart();
    settleIssues();
    return { type, partition: input.partition.partition, deletions, parts: progress.parts, ...(progress.issues ? { issues: progress.issues } : {}) };
  } catch (err) {
    parts.destroy();
    throw err;
  }
}
