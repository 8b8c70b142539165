/** `GET [base]/{type}?...`: a FHIR type search answered with a `searchset` Bundle (src/search/type-search.ts). */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { ResourceStore } from '../../store/resource-store';
import { answerTypeSearch, checkTypeSearch } from '../../search-runner/type-search';
import { prefersAsync, type AsyncRequests } from './async-requests';
import { requirePermission } from '../authorize';
import { isKnownResourceType } from '../../fhir/resource-validation';

/** Search needs the `s` permission on a known type (unknown types are left to the 404). */
function checkTypeSearchPermission(ctx: Context & { state: AppState }, type: string): void {
  if (isKnownResourceType(type)) requirePermission(ctx, type, 's');
}
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { FHIR_JSON } from '../middleware/operation-outcome-errors';

/** `async`: with it, `Prefer: respond-async` runs the search as a workflow. */
export function searchRouter(deps: { store: ResourceStore; async?: AsyncRequests }): Router<AppState> {
  const router = newRouter();

  router.get('/:type', access.token, async (ctx: Context & { state: AppState }) => {
    checkTypeSearchPermission(ctx, ctx.params.type);
    const request = {
      resourceType: ctx.params.type,
      querystring: ctx.querystring,
      lenient: /handling\s*=\s*lenient/i.test(ctx.get('Prefer')),
      fhirBaseUrl: ctx.state.fhirBaseUrl,
    };
    if (deps.async && prefersAsync(ctx)) {
      checkTypeSearch(request); // a bad search is answered now, not after a round trip
      const { fhirBaseUrl: _base, ...search } = request;
      return deps.async.respond(ctx, { kind: 'search', search });
    }
    const body = await answerTypeSearch(deps.store.forTenant(ctx.state.tenant), request);
    ctx.type = FHIR_JSON;
    ctx.body = body;
  });

  return router;
}
