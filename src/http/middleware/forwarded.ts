import type { Middleware } from 'koa';
import type { AppState } from '../app-state';
import { clientAddress, publicOrigin, type ForwardedHeaders } from '../public-origin';
import { trustedProxies } from '../trusted-proxies';

/**
 * Leaves on `ctx.state` the FHIR base URL this client reaches us at and the client's address.
 * Forwarded headers count only from a peer in `trustedProxies`; from anyone else, and always
 * when the list is empty (the default), BASE_URL and the TCP peer stand.
 */
export function forwarded(config: { baseUrl: string; fhirBasePath: string; trustedProxies: readonly string[] }): Middleware<AppState> {
  const trusted = trustedProxies(config.trustedProxies);
  const configuredBase = config.baseUrl + config.fhirBasePath;
  return async (ctx, next) => {
    const peer = ctx.req.socket.remoteAddress ?? '';
    if (!trusted(peer)) {
      ctx.state.fhirBaseUrl = configuredBase;
      ctx.state.clientAddress = clientAddress(peer, {}, trusted);
      return next();
    }
    const headers: ForwardedHeaders = {
      forwardedHost: ctx.get('X-Forwarded-Host') || undefined,
      forwardedProto: ctx.get('X-Forwarded-Proto') || undefined,
      forwardedFor: ctx.get('X-Forwarded-For') || undefined,
      forwarded: ctx.get('Forwarded') || undefined,
    };
    ctx.state.fhirBaseUrl = publicOrigin(headers, config.baseUrl) + config.fhirBasePath;
    ctx.state.clientAddress = clientAddress(peer, headers, trusted);
    // A cache between the proxy and bulkflow must not hand one host's URLs to another.
    ctx.vary('X-Forwarded-Host');
    ctx.vary('X-Forwarded-Proto');
    ctx.vary('Forwarded');
    await next();
  };
}
