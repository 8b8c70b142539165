import { ApplicationFailure } from '@temporalio/common';
import { parseStoredBody } from '../src/store/stored-body';
import type { Pool } from 'pg';
import { keptElements, subsetResource } from '../src/fhir/elements';
import { compileTypeFilter, type CompiledTypeFilter } from '../src/fhir/search/type-filter';
import type { OutputStore } from '../src/output/output-store';
import { typeFilterSql } from '../src/store/search-sql';
import { streamPatientBlocks, type BlockCursor } from '../src/store/patient-blocks';
import { BLOCKS, type ExportPartitionResult } from '../src/contracts/bulk-export';
import { readBlocksInput } from '../src/contracts/legacy-shapes';
import { partKey } from '../src/output/file-keys';
import { PartitionRun } from './partition-run';
import { PartWriter } from './part-writer';

/** The `Parameters` resource that heads each patient's block (and each file a block continues in). */
export const blockHeader = (patientId: string) =>
  Buffer.from(JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'header', valueReference: { reference: `Patient/${patientId}` } }] }));

/**
 * `organizeOutputBy=Patient`: writes a range of patients as blocks, each a header followed by the
 * patient's resources. Parts rotate by count and size between resources; when a block goes on in
 * the next part, that part starts with the header again and the finished part is marked
 * `continues`. Headers are not counted as resources. Retries resume from the last heartbeat.
 */
export async function exportPatientBlocks(
  deps: { pool: Pool; output: OutputStore },
  received: Parameters<typeof readBlocksInput>[0],
): Promise<ExportPartitionResult> {
  const input = readBlocksInput(received);
  const { compartment } = input.window;
  if (!compartment) throw ApplicationFailure.nonRetryable('Patient blocks are read from a compartment; this partition has none', 'NoCompartment');
  const run = new PartitionRun<BlockCursor>();
  const { progress } = run;
  const filters = new Map<string, CompiledTypeFilter>(input.types.map((t) => [t, compileTypeFilter(t, input.typeFilters?.[t])]));
  // The root elements to keep per type (built once, not per resource).
  const kept = new Map(
    input.types.map((t) => {
      const keep = keptElements(input.elements, t);
      return [t, keep && new Set(keep)] as const;
    }),
  );
  const scope = {
    ...input.window,
    compartment,
    types: input.types,
    filterSql: Object.fromEntries([...filters].map(([t, f]) => [t, typeFilterSql(f)])),
  };
  const lineOf = (type: string, body: Buffer): Buffer | undefined => {
    const filter = filters.get(type)!;
    const keep = kept.get(type);
    if (filter.exact && !keep) return body;
    const resource = parseStoredBody(body.toString('utf8'), type);
    if (!filter.exact && !filter.matches(resource)) return undefined;
    return keep ? Buffer.from(JSON.stringify(subsetResource(resource, keep))) : body;
  };

  const parts = new PartWriter(deps.output, (part) => partKey(input.location, 'patient-blocks', input.partition.partition, part), 'Patient', input.limits, progress.parts);
  let position = progress.cursor;
  let openBlock: string | undefined; // the patient whose block the open part is writing
  let rotate = false; // the open part is full: close it before the next line

  try {
    for await (const rows of streamPatientBlocks(deps.pool, scope, { ...input.partition.blocks, after: position })) {
      run.alive();
      for (const row of rows) {
        const line = lineOf(row.type, row.body);
        if (line) {
          const patientId = row.cursor.patientId;
          if (rotate) {
            // Now it is known whether the block goes on in the next part.
            await parts.finish(patientId === openBlock ? { continues: true } : {});
            run.partDone(position);
            rotate = false;
          }
          if (!parts.isOpen || patientId !== openBlock) {
            parts.add(blockHeader(patientId), false);
            openBlock = patientId;
          }
          parts.add(line);
          rotate = parts.isFull;
        }
        position = row.cursor;
      }
      await parts.flush();
    }
    if (parts.isOpen) await parts.finish();
    return { type: BLOCKS, partition: input.partition.partition, parts: progress.parts };
  } catch (err) {
    parts.destroy();
    throw err;
  }
}
