import type { Middleware } from 'koa';
import { InvalidTokenError, type AccessTokens } from '../../auth/access-tokens';
import type { AppState } from '../app-state';
import { HttpError } from '../http-error';

const REALM = 'Bearer realm="bulkflow"';

/**
 * With authorization on, every request not for a public path needs `Authorization: Bearer` with
 * an access token this server trusts; the verified caller goes on `ctx.state.caller`. A missing
 * token is 401 (never 403) with `WWW-Authenticate`. With it off, headers are ignored, a blank
 * `Bearer` too.
 */
export function authenticate(tokens: AccessTokens | undefined, isPublic: (path: string) => boolean, defaultTenant: string): Middleware<AppState> {
  return async (ctx, next) => {
    if (!tokens || isPublic(ctx.path)) return next();
    const match = /^Bearer\s+(\S+)\s*$/i.exec(ctx.get('Authorization'));
    if (!match) throw new HttpError(401, 'login', 'An access token is required (Authorization: Bearer)', { headers: { 'WWW-Authenticate': REALM } });
    try {
      ctx.state.caller = await tokens.verify(match[1]);
    } catch (err) {
      if (!(err instanceof InvalidTokenError)) throw err;
      const description = err.message.replace(/"/g, "'");
      throw new HttpError(401, err.expired ? 'expired' : 'login', `Invalid access token: ${err.message}`, {
        headers: { 'WWW-Authenticate': `${REALM}, error="invalid_token", error_description="${description}"` },
      });
    }
    // A token is valid in its own tenant (an operator's admin token in every one).
    const caller = ctx.state.caller!;
    if ((caller.tenant ?? defaultTenant) !== ctx.state.tenant && !caller.scopes.admin) {
      throw new HttpError(403, 'forbidden', `The access token is not valid for tenant ${ctx.state.tenant}`);
    }
    return next();
  };
}
