import type { Middleware } from 'koa';
import type { AppState } from '../app-state';
import { publicOrigin } from '../public-origin';

/** Leaves the FHIR base URL this client reaches us at on `ctx.state.fhirBaseUrl`. */
export function publicBaseUrl(config: { baseUrl: string; fhirBasePath: string }): Middleware<AppState> {
  return async (ctx, next) => {
    const origin = publicOrigin(
      { forwardedHost: ctx.get('X-Forwarded-Host') || undefined, forwardedProto: ctx.get('X-Forwarded-Proto') || undefined, forwarded: ctx.get('Forwarded') || undefined },
      config.baseUrl,
    );
    ctx.state.fhirBaseUrl = origin + config.fhirBasePath;
    await next();
  };
}
