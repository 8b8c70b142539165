/**
 * FHIR REST writes and reads: read, update (PUT), create (POST), delete, and batch/transaction
 * Bundles on `[base]`. Every write goes through the ResourceStore; a transaction is one
 * database transaction.
 */
import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { etag, knownType, readBundleRequest, runBatch, runTransaction, validId, validResource } from '../../fhir/bundle-processing';
import type { ResourceStore, WriteResult } from '../../store/resource-store';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { prefersAsync, type AsyncRequests } from './async-requests';
import { requirePermission } from '../authorize';
import { FHIR_JSON } from '../middleware/operation-outcome-errors';
import { readJsonBody } from '../read-json-body';
import { compileView } from '../../views/view-definition';
import { DEFAULT_MAX_RESOURCE_BYTES } from '../../config';
import { OperationOutcomeError } from '../../fhir/outcome-error';

export interface ResourceRoutesDependencies {
  store: ResourceStore;
  /** With it, a batch or transaction with `Prefer: respond-async` runs as a workflow. */
  async?: AsyncRequests;
  /** The largest write body (MAX_RESOURCE_BYTES). */
  maxBodyBytes?: number;
}

export function resourceRouter(deps: ResourceRoutesDependencies): Router<AppState> {
  const router = newRouter();
  const maxBodyBytes = deps.maxBodyBytes ?? DEFAULT_MAX_RESOURCE_BYTES;
  const store = (ctx: Context & { state: AppState }) => deps.store.forTenant(ctx.state.tenant);
  const locationIn = (ctx: Context) => (r: WriteResult) => `${ctx.state.fhirBaseUrl}/${r.resourceType}/${r.id}/_history/${r.versionId}`;

  const answerWrite = (ctx: Context, result: WriteResult) => {
    ctx.status = result.outcome === 'created' ? 201 : 200;
    ctx.set('ETag', etag(result.versionId!));
    ctx.set('Last-Modified', new Date(result.lastUpdated!).toUTCString());
    if (result.outcome === 'created') ctx.set('Location', locationIn(ctx)(result));
    ctx.type = FHIR_JSON;
    ctx.body = result.body;
  };

  router.get('/:type/:id', access.token, async (ctx) => {
    requirePermission(ctx, knownType(ctx.params.type), 'r');
    const stored = await store(ctx).read(knownType(ctx.params.type), validId(ctx.params.id));
    if (!stored) throw OperationOutcomeError.notFound(`${ctx.params.type}/${ctx.params.id} is not known`);
    if (stored.deleted) throw new OperationOutcomeError('deleted', `${ctx.params.type}/${ctx.params.id} was deleted`);
    ctx.set('ETag', etag(stored.versionId));
    ctx.set('Last-Modified', new Date(stored.lastUpdated).toUTCString());
    ctx.type = FHIR_JSON;
    ctx.body = stored.body;
  });

  router.put('/:type/:id', access.token, async (ctx) => {
    const type = knownType(ctx.params.type);
    requirePermission(ctx, type, 'u');
    const id = validId(ctx.params.id);
    const resource = validResource(await readJsonBody(ctx, maxBodyBytes));
    if (resource.resourceType !== type) throw OperationOutcomeError.invalid(`The body is a ${resource.resourceType}, the URL names ${type}`);
    if (resource.id !== undefined && resource.id !== id) throw OperationOutcomeError.invalid(`The body's id ${resource.id} differs from the URL's ${id}`);
    if (type === 'ViewDefinition') compileView(resource); // a view that cannot run is refused (400/422)
    const [result] = await store(ctx).write([{ op: 'put', resource: { ...resource, id } }]);
    answerWrite(ctx, result);
  });

  router.post('/:type', access.token, async (ctx) => {
    const type = knownType(ctx.params.type);
    requirePermission(ctx, type, 'c');
    const resource = validResource(await readJsonBody(ctx, maxBodyBytes));
    if (resource.resourceType !== type) throw OperationOutcomeError.invalid(`The body is a ${resource.resourceType}, the URL names ${type}`);
    if (type === 'ViewDefinition') compileView(resource);
    // The server assigns the id of a created resource.
    const [result] = await store(ctx).write([{ op: 'put', resource: { ...resource, id: randomUUID() } }]);
    answerWrite(ctx, result);
  });

  router.delete('/:type/:id', access.token, async (ctx) => {
    requirePermission(ctx, knownType(ctx.params.type), 'd');
    await store(ctx).delete(knownType(ctx.params.type), validId(ctx.params.id));
    ctx.status = 204;
  });

  router.post('/', access.token, async (ctx) => {
    const { type, bundle, entries } = readBundleRequest(await readJsonBody(ctx, maxBodyBytes));
    for (const entry of entries) {
      // Every entry's write must be granted, or nothing is done.
      const request = (entry.request ?? {}) as { method?: string; url?: string };
      const permission = ({ PUT: 'u', POST: 'c', DELETE: 'd' } as const)[request.method as 'PUT' | 'POST' | 'DELETE'];
      const entryType = /^([A-Z][A-Za-z]+)/.exec(request.url ?? '')?.[1];
      if (permission && entryType) requirePermission(ctx, entryType, permission);
    }
    if (deps.async && prefersAsync(ctx)) return deps.async.respond(ctx, { kind: 'batch', bundle });
    ctx.type = FHIR_JSON;
    ctx.body = type === 'transaction' ? await runTransaction(store(ctx), entries, locationIn(ctx)) : await runBatch(store(ctx), entries, locationIn(ctx));
  });

  return router;
}
