/**
 * FHIR REST writes and reads: read, update (PUT), create (POST), delete, and batch/transaction
 * Bundles on `[base]`. Every write goes through the ResourceStore; a transaction is one
 * database transaction.
 */
import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import { checkResource, FHIR_ID, InvalidResourceError, isKnownResourceType, type FhirResourceJson } from '../../fhir/resource-validation';
import { operationOutcome } from '../../fhir/operation-outcome';
import { rewriteReferences } from '../../import/references';
import type { ResourceStore, WriteOperation, WriteResult } from '../../store/resource-store';
import type { AppState } from '../app-state';
import { HttpError } from '../http-error';
import { FHIR_JSON } from '../middleware/operation-outcome-errors';
import { readJsonBody } from '../read-json-body';

export interface ResourceRoutesDependencies {
  store: ResourceStore;
}

function knownType(type: string): string {
  if (!isKnownResourceType(type)) throw HttpError.notFound(`Unknown resource type ${type}`);
  return type;
}

function validId(id: string): string {
  if (!FHIR_ID.test(id)) throw HttpError.badRequest(`Invalid id ${JSON.stringify(id)}`);
  return id;
}

function validResource(body: unknown): FhirResourceJson {
  try {
    return checkResource(body);
  } catch (err) {
    if (err instanceof InvalidResourceError) throw HttpError.badRequest(err.message);
    throw err;
  }
}

const etag = (versionId: string) => `W/"${versionId}"`;

export function resourceRouter(deps: ResourceRoutesDependencies): Router<AppState> {
  const router = new Router<AppState>();
  const locationIn = (ctx: Context) => (r: WriteResult) => `${ctx.state.fhirBaseUrl}/${r.resourceType}/${r.id}/_history/${r.versionId}`;

  const answerWrite = (ctx: Context, result: WriteResult) => {
    ctx.status = result.outcome === 'created' ? 201 : 200;
    ctx.set('ETag', etag(result.versionId!));
    ctx.set('Last-Modified', new Date(result.lastUpdated!).toUTCString());
    if (result.outcome === 'created') ctx.set('Location', locationIn(ctx)(result));
    ctx.type = FHIR_JSON;
    ctx.body = result.body;
  };

  router.get('/:type/:id', async (ctx) => {
    const stored = await deps.store.read(knownType(ctx.params.type), validId(ctx.params.id));
    if (!stored) throw HttpError.notFound(`${ctx.params.type}/${ctx.params.id} is not known`);
    if (stored.deleted) throw new HttpError(410, 'deleted', `${ctx.params.type}/${ctx.params.id} was deleted`);
    ctx.set('ETag', etag(stored.versionId));
    ctx.set('Last-Modified', new Date(stored.lastUpdated).toUTCString());
    ctx.type = FHIR_JSON;
    ctx.body = stored.body;
  });

  router.put('/:type/:id', async (ctx) => {
    const type = knownType(ctx.params.type);
    const id = validId(ctx.params.id);
    const resource = validResource(await readJsonBody(ctx));
    if (resource.resourceType !== type) throw HttpError.badRequest(`The body is a ${resource.resourceType}, the URL names ${type}`);
    if (resource.id !== undefined && resource.id !== id) throw HttpError.badRequest(`The body's id ${resource.id} differs from the URL's ${id}`);
    const [result] = await deps.store.write([{ op: 'put', resource: { ...resource, id } }]);
    answerWrite(ctx, result);
  });

  router.post('/:type', async (ctx) => {
    const type = knownType(ctx.params.type);
    const resource = validResource(await readJsonBody(ctx));
    if (resource.resourceType !== type) throw HttpError.badRequest(`The body is a ${resource.resourceType}, the URL names ${type}`);
    // The server assigns the id of a created resource.
    const [result] = await deps.store.write([{ op: 'put', resource: { ...resource, id: randomUUID() } }]);
    answerWrite(ctx, result);
  });

  router.delete('/:type/:id', async (ctx) => {
    await deps.store.delete(knownType(ctx.params.type), validId(ctx.params.id));
    ctx.status = 204;
  });

  router.post('/', async (ctx) => {
    const bundle = validResource(await readJsonBody(ctx));
    if (bundle.resourceType !== 'Bundle' || (bundle.type !== 'transaction' && bundle.type !== 'batch')) {
      throw HttpError.badRequest('POST to the base takes a Bundle of type transaction or batch');
    }
    const entries = Array.isArray(bundle.entry) ? (bundle.entry as Array<Record<string, unknown>>) : [];
    ctx.type = FHIR_JSON;
    ctx.body =
      bundle.type === 'transaction'
        ? await runTransaction(deps.store, entries, locationIn(ctx))
        : await runBatch(deps.store, entries, locationIn(ctx));
  });

  return router;
}

/** One Bundle entry as a write, with `urn:uuid:` fullUrls resolved to the ids given to created resources. */
function entryOperation(entry: Record<string, unknown>, index: number, urns: Map<string, Target>): WriteOperation {
  const request = (entry.request ?? {}) as { method?: string; url?: string };
  const where = `Bundle.entry[${index}]`;
  const url = /^([A-Z][A-Za-z]+)(?:\/([^/?]+))?$/.exec(request.url ?? '');
  if (!url) throw new HttpError(400, 'invalid', `${where}: request.url ${JSON.stringify(request.url)} is not Type or Type/id`, { expression: [`${where}.request.url`] });
  const type = knownType(url[1]);
  if (request.method === 'DELETE') {
    if (!url[2]) throw HttpError.badRequest(`${where}: DELETE needs Type/id`);
    return { op: 'delete', resourceType: type, id: validId(url[2]) };
  }
  if (request.method !== 'PUT' && request.method !== 'POST') {
    throw new HttpError(400, 'not-supported', `${where}: request.method ${JSON.stringify(request.method)} is not supported (PUT, POST, DELETE)`);
  }
  const resource = validResource(entry.resource);
  if (resource.resourceType !== type) throw HttpError.badRequest(`${where}: the resource is a ${resource.resourceType}, request.url names ${type}`);
  let id: string;
  if (request.method === 'PUT') {
    if (!url[2]) throw HttpError.badRequest(`${where}: PUT needs Type/id`);
    id = validId(url[2]);
  } else {
    id = urns.get(String(entry.fullUrl))?.id ?? randomUUID();
  }
  const target = (urn: string) => {
    const t = urns.get(urn);
    return t && `${t.type}/${t.id}`;
  };
  const unresolved = rewriteReferences(resource, target).unresolved;
  if (unresolved.length > 0) throw HttpError.badRequest(`${where}: reference ${unresolved[0]} matches no fullUrl in the Bundle`);
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

async function runTransaction(store: ResourceStore, entries: Array<Record<string, unknown>>, location: (r: WriteResult) => string) {
  const urns = fullUrlIds(entries);
  const operations = entries.map((entry, i) => entryOperation(entry, i, urns));
  const results = await store.transaction((tx) => tx.write(operations));
  return { resourceType: 'Bundle', type: 'transaction-response', entry: results.map((r) => responseEntry(r, location)) };
}

async function runBatch(store: ResourceStore, entries: Array<Record<string, unknown>>, location: (r: WriteResult) => string) {
  const urns = fullUrlIds(entries);
  const entry = [];
  for (const [i, e] of entries.entries()) {
    try {
      const [result] = await store.write([entryOperation(e, i, urns)]);
      entry.push(responseEntry(result, location));
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      entry.push({ response: { status: `${err.status}`, outcome: operationOutcome(...err.issues) } });
    }
  }
  return { resourceType: 'Bundle', type: 'batch-response', entry };
}
