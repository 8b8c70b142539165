import type { Middleware } from 'koa';
import type { AppState } from '../app-state';
import { publicOrigin } from '../public-origin';

/**
 * Leaves the FHIR base URL this client reaches us at on `ctx.state.fhirBaseUrl`: from the
 * forwarded headers only when they are trusted (TRUST_FORWARDED_HEADERS), else BASE_URL.
 */
export function publicBaseUrl(config: { baseUrl: string; fhirBasePath: string; trustForwardedHeaders: boolean }): Middleware<AppState> {
  return async (ctx, next) => {
    if (!config.trustForwardedHeaders) {
      ctx.state.fhirBaseUrl = config.baseUrl + config.fhirBasePath;
      return next();
    }
    const origin = publicOrigin(
      { forwardedHost: ctx.get('X-Forwarded-Host') || undefined, forwardedProto: ctx.get('X-Forwarded-Proto') || undefined, forwarded: ctx.get('Forwarded') || undefined },
      config.baseUrl,
    );
    ctx.state.fhirBaseUrl = origin + config.fhirBasePath;
    await next();
  };
}
