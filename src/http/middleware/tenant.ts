import type { Middleware } from 'koa';
import { TENANT_ID } from '../../tenant-id';
import type { AppState } from '../app-state';
import { OperationOutcomeError } from '../../fhir/outcome-error';


/**
 * Chooses the request's tenant: a `/t/{tenant}` path prefix (removed before routing, kept in
 * every URL the response builds), else the configured header, else the default tenant. Runs
 * after the forwarded middleware, which sets the base URL.
 */
export function tenantRouting(options: { defaultTenant: string; header?: string; fhirBasePath: string }): Middleware<AppState> {
  return async (ctx, next) => {
    const prefixed = /^\/t\/([^/]+)(\/.*)$/.exec(ctx.path);
    let tenant = options.defaultTenant;
    if (prefixed) {
      if (!TENANT_ID.test(prefixed[1])) throw OperationOutcomeError.notFound(`No tenant ${JSON.stringify(prefixed[1])}`);
      tenant = prefixed[1];
      ctx.path = prefixed[2];
      const base = ctx.state.fhirBaseUrl;
      ctx.state.fhirBaseUrl = `${base.slice(0, base.length - options.fhirBasePath.length)}/t/${tenant}${options.fhirBasePath}`;
    } else if (options.header && ctx.get(options.header)) {
      const value = ctx.get(options.header).trim();
      if (!TENANT_ID.test(value)) throw OperationOutcomeError.invalid(`${options.header} must be a tenant id (a-z, 0-9, _ and -, up to 40), got ${JSON.stringify(value)}`);
      tenant = value;
    }
    ctx.state.tenant = tenant;
    await next();
  };
}
