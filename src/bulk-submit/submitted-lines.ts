/**
 * The CPU half of loading a submitted file: a batch of its NDJSON lines in, prepared puts and
 * line-numbered problems out. Plain data both ways, so it runs on a parser thread
 * (line-parser-thread.ts) while the loader's thread downloads and writes.
 */
import type { LineIssue } from '../contracts/bulk-submit';
import { checkResource, InvalidResourceError } from '../fhir/resource-validation';
import { prepareResource } from '../store/prepared-resource';
import type { WriteOperation } from '../store/resource-store';

/** A batch of a file's lines: `bytes` holds them one after another; line i ends at `ends[i]` and is the file's line `numbers[i]`. */
export interface LineBatch {
  type: string;
  bytes: Uint8Array;
  ends: number[];
  numbers: number[];
}

export interface ParsedLines {
  ops: WriteOperation[];
  issues: LineIssue[];
}

export function parseLines(batch: LineBatch): ParsedLines {
  const ops: WriteOperation[] = [];
  const issues: LineIssue[] = [];
  const text = Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
  let start = 0;
  for (let i = 0; i < batch.ends.length; i++) {
    const line = batch.numbers[i];
    const source = text.toString('utf8', start, batch.ends[i]).trim();
    start = batch.ends[i];
    let parsed: unknown;
    try {
      parsed = JSON.parse(source);
    } catch {
      issues.push({ line, severity: 'error', diagnostics: `line ${line} is not JSON` });
      continue;
    }
    try {
      const resource = checkResource(parsed);
      if (resource.resourceType !== batch.type) issues.push({ line, severity: 'error', diagnostics: `line ${line} holds a ${String(resource.resourceType)} in a file of ${batch.type}` });
      else if (typeof resource.id !== 'string') issues.push({ line, severity: 'error', diagnostics: `line ${line}: a submitted resource needs an id (a retried file must not create it twice)` });
      else ops.push({ op: 'put-prepared', prepared: prepareResource(resource) });
    } catch (err) {
      if (!(err instanceof InvalidResourceError)) throw err;
      issues.push({ line, severity: 'error', diagnostics: `line ${line}: ${err.message}` });
    }
  }
  return { ops, issues };
}
