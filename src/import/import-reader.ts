/**
 * The reading half of an import, with no database: files in, write operations out. Streams
 * Bundles, NDJSON and single resources (optionally gzipped), unpacks Bundles, rewrites urn:uuid
 * references to `Type/id` (also across files), and prepares each resource for the store. What
 * it yields is plain data, so it can run on its own thread (import-reader-thread.ts) while the
 * importer writes.
 */
import { randomUUID } from 'node:crypto';
import { checkResource, FHIR_ID, InvalidResourceError, type FhirResourceJson } from '../fhir/resource-validation';
import { prepareResource } from '../store/prepared-resource';
import type { WriteOperation } from '../store/resource-store';
import { rewriteReferences } from '../fhir/references';
import { expandPaths, looksLikeNdjson, numberedLines, openDecompressed, readWhole } from './sources';

export interface Skipped {
  file: string;
  /** Line (NDJSON) or entry index (Bundle), when the problem is inside the file. */
  where?: string;
  reason: string;
}

/** A resource whose urn:uuid references name nothing read so far: it waits for the end. */
export interface PendingResource {
  resource: FhirResourceJson;
  file: string;
}

export type ImportEvent =
  /** First: how many files the paths hold. */
  | { kind: 'files'; total: number }
  | { kind: 'ops'; ops: WriteOperation[] }
  | { kind: 'skipped'; skipped: Skipped }
  | { kind: 'file-done'; file: string; filesDone: number; filesTotal: number; resources: number }
  /** Last: what waits for references, the urn:uuid targets seen, conditional references counted. */
  | { kind: 'end'; deferred: PendingResource[]; urnTargets: Array<[string, string]>; conditionalReferences: number };

const BUNDLE_TYPES_TO_UNPACK = new Set(['transaction', 'batch', 'collection', 'searchset', 'transaction-response', 'batch-response']);

/** A put of a resource, prepared for the store (an id is given to a resource that has none). */
export function preparedPut(resource: FhirResourceJson): WriteOperation {
  return { op: 'put-prepared', prepared: prepareResource(resource) };
}

export async function* readImport(paths: string[], chunkSize = 500): AsyncGenerator<ImportEvent> {
  const urnTargets = new Map<string, string>(); // urn:uuid:… → Type/id, across all files
  const deferred: PendingResource[] = [];
  let conditionalReferences = 0;
  let resources = 0;
  let ops: WriteOperation[] = [];
  const pending: ImportEvent[] = []; // skipped entries, in order with the operations

  const enqueue = (operation: WriteOperation) => {
    resources++;
    ops.push(operation);
  };
  const enqueueResource = (resource: FhirResourceJson, file: string, local?: Map<string, string>) => {
    const scan = rewriteReferences(resource, (urn) => local?.get(urn) ?? urnTargets.get(urn));
    conditionalReferences += scan.conditional.length;
    if (scan.unresolved.length > 0) deferred.push({ resource, file });
    else enqueue(preparedPut(resource));
  };
  const skip = (skipped: Skipped) => pending.push({ kind: 'skipped', skipped });
  function* drain(all: boolean): Generator<ImportEvent> {
    yield* pending.splice(0);
    if (ops.length >= chunkSize || (all && ops.length > 0)) {
      yield { kind: 'ops', ops };
      ops = [];
    }
  }

  const importBundle = (bundle: FhirResourceJson, file: string) => {
    if (!BUNDLE_TYPES_TO_UNPACK.has(String(bundle.type))) {
      // A document, message or history Bundle is stored as one resource.
      enqueueResource(bundle, file);
      return;
    }
    const entries = Array.isArray(bundle.entry) ? (bundle.entry as Array<Record<string, unknown>>) : [];
    const local = new Map<string, string>();
    const ready: FhirResourceJson[] = [];
    for (const [i, entry] of entries.entries()) {
      const where = `entry ${i}`;
      const request = (entry.request ?? {}) as { method?: string; url?: string };
      if (request.method === 'DELETE') {
        const match = /^([A-Z][A-Za-z]+)\/([^/?]+)$/.exec(request.url ?? '');
        if (!match) skip({ file, where, reason: `DELETE of ${JSON.stringify(request.url)} is not Type/id` });
        else enqueue({ op: 'delete', resourceType: match[1], id: match[2] });
        continue;
      }
      let resource: FhirResourceJson;
      try {
        resource = checkResource(entry.resource);
      } catch (err) {
        skip({ file, where, reason: (err as Error).message });
        continue;
      }
      resource.id = idFor(resource, entry.fullUrl, request);
      if (typeof entry.fullUrl === 'string' && entry.fullUrl.startsWith('urn:')) {
        local.set(entry.fullUrl, `${resource.resourceType}/${resource.id}`);
        urnTargets.set(entry.fullUrl, `${resource.resourceType}/${resource.id}`);
      }
      ready.push(resource);
    }
    for (const resource of ready) enqueueResource(resource, file, local);
  };
  const parse = (text: string, file: string, where?: string): FhirResourceJson | undefined => {
    const parsed = parseResource(text);
    if ('reason' in parsed) {
      skip({ file, where, reason: parsed.reason });
      return undefined;
    }
    return parsed.resource;
  };

  const files = await expandPaths(paths);
  yield { kind: 'files', total: files.length };
  // A document (not NDJSON) is read and decompressed while the one before it is being parsed.
  const readDocument = (file: string) => openDecompressed(file).then(readWhole);
  let prefetched: { file: string; text: Promise<string> } | undefined;
  for (const [index, file] of files.entries()) {
    try {
      const next = files[index + 1];
      if (!looksLikeNdjson(file)) {
        const text = prefetched?.file === file ? prefetched.text : readDocument(file);
        prefetched = next && !looksLikeNdjson(next) ? { file: next, text: readDocument(next) } : undefined;
        prefetched?.text.catch(() => undefined); // its failure is reported when its turn comes
        const resource = parse(await text, file);
        if (resource?.resourceType === 'Bundle') importBundle(resource, file);
        else if (resource) enqueueResource(resource, file);
        yield* drain(false);
      } else {
        for await (const { line, text } of numberedLines(await openDecompressed(file))) {
          if (text.trim() === '') continue;
          const resource = parse(text, file, `line ${line}`);
          if (resource?.resourceType === 'Bundle') importBundle(resource, file);
          else if (resource) enqueueResource(resource, file);
          yield* drain(false);
        }
      }
    } catch (err) {
      skip({ file, reason: `cannot read: ${(err as Error).message}` });
    }
    yield* drain(true);
    yield { kind: 'file-done', file, filesDone: index + 1, filesTotal: files.length, resources };
  }
  yield { kind: 'end', deferred, urnTargets: [...urnTargets], conditionalReferences };
}

function parseResource(text: string): { resource: FhirResourceJson } | { reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { reason: `not JSON: ${(err as Error).message}` };
  }
  try {
    return { resource: checkResource(value) };
  } catch (err) {
    if (!(err instanceof InvalidResourceError)) throw err;
    return { reason: err.message };
  }
}

/** The id an imported entry gets: its own, the one in a `PUT Type/id`, its urn:uuid, or a new one. */
function idFor(resource: FhirResourceJson, fullUrl: unknown, request: { method?: string; url?: string }): string {
  if (resource.id) return resource.id;
  const put = request.method === 'PUT' ? /^[A-Z][A-Za-z]+\/([^/?]+)$/.exec(request.url ?? '') : null;
  if (put && FHIR_ID.test(put[1])) return put[1];
  const uuid = typeof fullUrl === 'string' ? /^urn:uuid:([0-9a-fA-F-]{36})$/.exec(fullUrl) : null;
  return uuid ? uuid[1].toLowerCase() : randomUUID();
}
