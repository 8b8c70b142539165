/**
 * FHIR batch and transaction Bundles on the store: entries to writes (`urn:uuid:` fullUrls
 * resolved), and the response Bundles. Shared by the REST route and asynchronous requests.
 */
import { randomUUID } from 'node:crypto';
import { checkResource, FHIR_ID, InvalidResourceError, isKnownResourceType, type FhirResourceJson } from './resource-validation';
import { operationOutcome } from './operation-outcome';
import { OperationOutcomeError } from './outcome-error';
import { rewriteReferences } from './references';

/** A write a Bundle entry asks for (the store's write operations include these). */
export type WriteOperation = { op: 'put'; resource: FhirResourceJson } | { op: 'delete'; resourceType: string; id: string };

/** What the writer reports per operation (the store's write results have this shape). */
export interface WriteResult {
  resourceType: string;
  id: string;
  outcome: 'created' | 'updated' | 'unchanged' | 'deleted' | 'not-found';
  versionId?: string;
  lastUpdated?: string;
  body?: string;
}

/** What running a Bundle needs of a store: its writes (one transaction per call). */
export interface ResourceWriter {
  write(operations: WriteOperation[]): Promise<WriteResult[]>;
}

export function knownType(type: string): string {
  if (!isKnownResourceType(type)) throw OperationOutcomeError.notFound(`Unknown resource type ${type}`);
  return type;
}

export function validId(id: string): string {
  if (!FHIR_ID.test(id)) throw OperationOutcomeError.invalid(`Invalid id ${JSON.stringify(id)}`);
  return id;
}

export function validResource(body: unknown): FhirResourceJson {
  try {
    return checkResource(body);
  } catch (err) {
    if (err instanceof InvalidResourceError) throw OperationOutcomeError.invalid(err.message);
    throw err;
  }
}

export const etag = (versionId: string) => `W/"${versionId}"`;

/** A POST to the base: a batch or transaction Bundle and its entries. */
export function readBundleRequest(body: unknown): { type: 'batch' | 'transaction'; bundle: FhirResourceJson; entries: Array<Record<string, unknown>> } {
  const bundle = validResource(body);
  if (bundle.resourceType !== 'Bundle' || (bundle.type !== 'transaction' && bundle.type !== 'batch')) {
    throw OperationOutcomeError.invalid('POST to the base takes a Bundle of type transaction or batch');
  }
  const entries = Array.isArray(bundle.entry) ? (bundle.entry as Array<Record<string, unknown>>) : [];
  return { type: bundle.type, bundle, entries };
}

/** One Bundle entry as a write, with `urn:uuid:` fullUrls resolved to the ids given to created resources. */
function entryOperation(entry: Record<string, unknown>, index: number, urns: Map<string, Target>): WriteOperation {
  const request = (entry.request ?? {}) as { method?: string; url?: string };
  const where = `Bundle.entry[${index}]`;
  const url = /^([A-Z][A-Za-z]+)(?:\/([^/?]+))?$/.exec(request.url ?? '');
  if (!url) throw new OperationOutcomeError('invalid', `${where}: request.url ${JSON.stringify(request.url)} is not Type or Type/id`, { expression: [`${where}.request.url`] });
  const type = knownType(url[1]);
  if (request.method === 'DELETE') {
    if (!url[2]) throw OperationOutcomeError.invalid(`${where}: DELETE needs Type/id`);
    return { op: 'delete', resourceType: type, id: validId(url[2]) };
  }
  if (request.method !== 'PUT' && request.method !== 'POST') {
    throw new OperationOutcomeError('not-supported', `${where}: request.method ${JSON.stringify(request.method)} is not supported (PUT, POST, DELETE)`);
  }
  const resource = validResource(entry.resource);
  if (resource.resourceType !== type) throw OperationOutcomeError.invalid(`${where}: the resource is a ${resource.resourceType}, request.url names ${type}`);
  let id: string;
  if (request.method === 'PUT') {
    if (!url[2]) throw OperationOutcomeError.invalid(`${where}: PUT needs Type/id`);
    id = validId(url[2]);
  } else {
    id = urns.get(String(entry.fullUrl))?.id ?? randomUUID();
  }
  const target = (urn: string) => {
    const t = urns.get(urn);
    return t && `${t.type}/${t.id}`;
  };
  const unresolved = rewriteReferences(resource, target).unresolved;
  if (unresolved.length > 0) throw OperationOutcomeError.invalid(`${where}: reference ${unresolved[0]} matches no fullUrl in the Bundle`);
  return { op: 'put', resource: { ...resource, id } };
}

interface Target {
  type: string;
  id: string;
}

/** urn: fullUrl → the resource's type and id (new for POST entries), so references between entries resolve. */
function fullUrlIds(entries: Array<Record<string, unknown>>): Map<string, Target> {
  const urns = new Map<string, Target>();
  for (const entry of entries) {
    const fullUrl = entry.fullUrl;
    const request = (entry.request ?? {}) as { method?: string; url?: string };
    const resource = entry.resource as { resourceType?: string } | undefined;
    if (typeof fullUrl !== 'string' || !fullUrl.startsWith('urn:') || typeof resource?.resourceType !== 'string') continue;
    const id = request.method === 'PUT' ? (request.url ?? '').split('/')[1] : randomUUID();
    if (id) urns.set(fullUrl, { type: resource.resourceType, id });
  }
  return urns;
}

function responseEntry(result: WriteResult, location: (r: WriteResult) => string) {
  const status = result.outcome === 'created' ? '201 Created' : result.outcome === 'deleted' || result.outcome === 'not-found' ? '204 No Content' : '200 OK';
  return {
    ...(result.body ? { resource: JSON.parse(result.body) } : {}),
    response: {
      status,
      ...(result.versionId && result.outcome !== 'not-found' ? { location: location(result), etag: etag(result.versionId) } : {}),
      ...(result.lastUpdated ? { lastModified: result.lastUpdated } : {}),
    },
  };
}

export async function runTransaction(store: ResourceWriter, entries: Array<Record<string, unknown>>, location: (r: WriteResult) => string) {
  const urns = fullUrlIds(entries);
  const operations = entries.map((entry, i) => entryOperation(entry, i, urns));
  const results = await store.write(operations); // one database transaction: all or nothing
  return { resourceType: 'Bundle', type: 'transaction-response', entry: results.map((r) => responseEntry(r, location)) };
}

export async function runBatch(store: ResourceWriter, entries: Array<Record<string, unknown>>, location: (r: WriteResult) => string) {
  const urns = fullUrlIds(entries);
  const entry = [];
  for (const [i, e] of entries.entries()) {
    try {
      const [result] = await store.write([entryOperation(e, i, urns)]);
      entry.push(responseEntry(result, location));
    } catch (err) {
      if (!(err instanceof OperationOutcomeError)) throw err;
      entry.push({ response: { status: `${err.status}`, outcome: operationOutcome(...err.issues) } });
    }
  }
  return { resourceType: 'Bundle', type: 'batch-response', entry };
}
