import Router from '@koa/router';
import { buildCapabilityStatement, type CapabilityOptions } from '../../fhir/capability-statement';
import type { AppState } from '../app-state';
import { FHIR_JSON } from '../middleware/operation-outcome-errors';

/** `GET [base]/metadata`: the CapabilityStatement. */
export function metadataRouter(options: Omit<CapabilityOptions, 'fhirBaseUrl'>): Router<AppState> {
  const router = new Router<AppState>();
  router.get('/metadata', (ctx) => {
    ctx.type = FHIR_JSON;
    ctx.body = buildCapabilityStatement({ ...options, fhirBaseUrl: ctx.state.fhirBaseUrl });
  });
  return router;
}
