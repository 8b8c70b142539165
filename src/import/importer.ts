/**
 * `bulkflow import`: streams Bundles, NDJSON and single resources (optionally gzipped) into the
 * store in batches. urn:uuid fullUrls and references become `Type/id`, also across files (a
 * resource whose urn:uuid target is not known yet waits until the end); conditional references
 * stay as written and are reported. Bad files and lines are reported and skipped.
 */
import { randomUUID } from 'node:crypto';
import { checkResource, FHIR_ID, InvalidResourceError, type FhirResourceJson } from '../fhir/resource-validation';
import { PipelinedWriter } from '../store/pipelined-writer';
import type { ResourceStore, WriteOperation } from '../store/resource-store';
import { rewriteReferences } from './references';
import { expandPaths, looksLikeNdjson, numberedLines, openDecompressed, readWhole } from './sources';

export interface Skipped {
  file: string;
  /** Line (NDJSON) or entry index (Bundle), when the problem is inside the file. */
  where?: string;
  reason: string;
}

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
}

interface PendingResource {
  resource: FhirResourceJson;
  file: string;
}

const BUNDLE_TYPES_TO_UNPACK = new Set(['transaction', 'batch', 'collection', 'searchset', 'transaction-response', 'batch-response']);

export async function importPaths(store: ResourceStore, paths: string[], options: ImportOptions = {}): Promise<ImportSummary> {
  const batchSize = options.batchSize ?? 2000;
  const summary: ImportSummary = { files: 0, written: {}, unchanged: 0, deleted: 0, skipped: [], conditionalReferences: 0, unresolvedReferences: [] };
  const urnTargets = new Map<string, string>(); // urn:uuid:… → Type/id, across all files
  const deferred: PendingResource[] = [];
  let resources = 0;
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
  const enqueue = async (operation: WriteOperation) => {
    resources++;
    await writer.add(operation);
  };
  const enqueueResource = async (resource: FhirResourceJson, file: string, local?: Map<string, string>) => {
    const scan = rewriteReferences(resource, (urn) => local?.get(urn) ?? urnTargets.get(urn));
    summary.conditionalReferences += scan.conditional.length;
    if (scan.unresolved.length > 0) deferred.push({ resource, file });
    else await enqueue({ op: 'put', resource });
  };

  const files = await expandPaths(paths);
  // A document (not NDJSON) is read and decompressed while the one before it is being parsed.
  const readDocument = (file: string) => openDecompressed(file).then(readWhole);
  let prefetched: { file: string; text: Promise<string> } | undefined;
  for (const [index, file] of files.entries()) {
    summary.files++;
    try {
      const next = files[index + 1];
      if (!looksLikeNdjson(file)) {
        const text = prefetched?.file === file ? prefetched.text : readDocument(file);
        prefetched = next && !looksLikeNdjson(next) ? { file: next, text: readDocument(next) } : undefined;
        prefetched?.text.catch(() => undefined); // its failure is reported when its turn comes
        const parsed = parseResource(await text, summary, file);
        if (parsed?.resourceType === 'Bundle') await importBundle(parsed, file);
        else if (parsed) await enqueueResource(parsed, file);
      } else {
        const stream = await openDecompressed(file);
        for await (const { line, text } of numberedLines(stream)) {
          if (text.trim() === '') continue;
          const parsed = parseResource(text, summary, file, `line ${line}`);
          if (!parsed) continue;
          if (parsed.resourceType === 'Bundle') await importBundle(parsed, file);
          else await enqueueResource(parsed, file);
        }
      }
    } catch (err) {
      summary.skipped.push({ file, reason: `cannot read: ${(err as Error).message}` });
    }
    options.onProgress?.({ file, filesDone: index + 1, filesTotal: files.length, resources });
  }
  await writer.finish();
  await importDeferred();
  await writer.finish();
  return summary;

  async function importBundle(bundle: FhirResourceJson, file: string): Promise<void> {
    if (!BUNDLE_TYPES_TO_UNPACK.has(String(bundle.type))) {
      // A document, message or history Bundle is stored as one resource.
      await enqueueResource(bundle, file);
      return;
    }
    const entries = Array.isArray(bundle.entry) ? (bundle.entry as Array<Record<string, unknown>>) : [];
    const local = new Map<string, string>();
    const ready: Array<{ resource: FhirResourceJson; where: string }> = [];
    for (const [i, entry] of entries.entries()) {
      const where = `entry ${i}`;
      const request = (entry.request ?? {}) as { method?: string; url?: string };
      if (request.method === 'DELETE') {
        const match = /^([A-Z][A-Za-z]+)\/([^/?]+)$/.exec(request.url ?? '');
        if (!match) summary.skipped.push({ file, where, reason: `DELETE of ${JSON.stringify(request.url)} is not Type/id` });
        else await enqueue({ op: 'delete', resourceType: match[1], id: match[2] });
        continue;
      }
      let resource: FhirResourceJson;
      try {
        resource = checkResource(entry.resource);
      } catch (err) {
        summary.skipped.push({ file, where, reason: (err as Error).message });
        continue;
      }
      resource.id = idFor(resource, entry.fullUrl, request);
      if (typeof entry.fullUrl === 'string' && entry.fullUrl.startsWith('urn:')) {
        local.set(entry.fullUrl, `${resource.resourceType}/${resource.id}`);
        urnTargets.set(entry.fullUrl, `${resource.resourceType}/${resource.id}`);
      }
      ready.push({ resource, where });
    }
    for (const { resource } of ready) await enqueueResource(resource, file, local);
  }

  async function importDeferred(): Promise<void> {
    if (deferred.length === 0) return;
    // Targets never seen as a fullUrl may already be stored under the uuid as their id.
    const unknownIds = new Set<string>();
    for (const { resource } of deferred) {
      rewriteReferences(structuredClone(resource), (urn) => {
        if (!urnTargets.has(urn)) unknownIds.add(urn.replace(/^urn:uuid:/, ''));
        return undefined;
      });
    }
    const stored = await store.currentTypesOfIds([...unknownIds]);
    for (const [id, types] of stored) if (types.length === 1) urnTargets.set(`urn:uuid:${id}`, `${types[0]}/${id}`);
    for (const { resource } of deferred) {
      const scan = rewriteReferences(resource, (urn) => urnTargets.get(urn));
      for (const reference of scan.unresolved) {
        summary.unresolvedReferences.push({ resource: `${resource.resourceType}/${resource.id}`, reference });
      }
      await enqueue({ op: 'put', resource });
    }
  }
}

function parseResource(text: string, summary: ImportSummary, file: string, where?: string): FhirResourceJson | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    summary.skipped.push({ file, where, reason: `not JSON: ${(err as Error).message}` });
    return undefined;
  }
  try {
    return checkResource(value);
  } catch (err) {
    if (!(err instanceof InvalidResourceError)) throw err;
    summary.skipped.push({ file, where, reason: err.message });
    return undefined;
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
