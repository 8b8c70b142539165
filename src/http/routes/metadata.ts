import type Router from '@koa/router';
import { buildCapabilityStatement, type CapabilityOptions } from '../../fhir/capability-statement';
import { operationDefinition } from '../../fhir/operation-definitions';
import { bulkSubmitOperationDefinition } from '../../fhir/bulk-submit-operation-definitions';
import { sqlOperationDefinition } from '../../fhir/sql-operation-definitions';
import { smartConfiguration, tokenEndpointFor } from './token';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { FHIR_JSON } from '../middleware/operation-outcome-errors';
import { OperationOutcomeError } from '../../fhir/outcome-error';

/** `GET [base]/metadata`: the CapabilityStatement; `GET [base]/OperationDefinition/{id}`: the `$export`, `$sql-run`, `$sql-export` and receiving-side definitions. */
export function metadataRouter(options: Omit<CapabilityOptions, 'fhirBaseUrl' | 'tokenEndpoint'> & { smart?: boolean; fhirBasePath?: string }): Router<AppState> {
  // The token endpoint is at the origin, next to the FHIR base.
  const tokenEndpointOf = (fhirBaseUrl: string) => tokenEndpointFor(fhirBaseUrl, options.fhirBasePath ?? '');
  const router = newRouter();
  // Built once per base URL: listing every type's search parameters takes a moment.
  const statements = new Map<string, string>();
  router.get('/metadata', access.public, (ctx) => {
    const base = ctx.state.fhirBaseUrl;
    if (!statements.has(base) && statements.size < 16) statements.set(base, JSON.stringify(buildCapabilityStatement({ ...options, fhirBaseUrl: base, tokenEndpoint: options.smart ? tokenEndpointOf(base) : undefined })));
    ctx.type = FHIR_JSON;
    ctx.body = statements.get(base) ?? JSON.stringify(buildCapabilityStatement({ ...options, fhirBaseUrl: base, tokenEndpoint: options.smart ? tokenEndpointOf(base) : undefined }));
  });
  if (options.smart) {
    router.get('/.well-known/smart-configuration', access.public, (ctx) => {
      ctx.type = 'application/json';
      ctx.body = smartConfiguration(tokenEndpointOf(ctx.state.fhirBaseUrl));
    });
  }
  router.get('/OperationDefinition/:id', access.public, (ctx) => {
    const definition =
      (options.bulkExport ? operationDefinition(ctx.params.id) : undefined) ??
      (options.viewOperations ? sqlOperationDefinition(ctx.params.id) : undefined) ??
      (options.bulkSubmit ? bulkSubmitOperationDefinition(ctx.params.id, ctx.state.fhirBaseUrl) : undefined);
    if (!definition) throw OperationOutcomeError.notFound(`OperationDefinition/${ctx.params.id} is not known`);
    ctx.type = FHIR_JSON;
    ctx.body = definition;
  });
  return router;
}
