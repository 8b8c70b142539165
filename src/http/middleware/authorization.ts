import type { Middleware } from 'koa';
import { InvalidTokenError, type AccessTokens, type Caller } from '../../auth/access-tokens';
import type { AccessLevel } from '../access';
import type { AppState } from '../app-state';
import { OperationOutcomeError } from '../../fhir/outcome-error';

const REALM = 'Bearer realm="bulkflow"';

/**
 * Leaves on `ctx.state.authorize` the check a matched route's access declaration runs (see
 * access.ts). With authorization on, `token` and `admin` routes need `Authorization: Bearer`
 * with an access token this server trusts, valid in the request's tenant; the verified caller
 * goes on `ctx.state.caller`. A missing token is 401 (never 403) with `WWW-Authenticate`.
 * With it off, every route is open and headers are ignored.
 */
export function authorization(tokens: AccessTokens | undefined, defaultTenant: string): Middleware<AppState> {
  return async (ctx, next) => {
    ctx.state.authorize = async (level: AccessLevel) => {
      if (!tokens || level === 'public') return;
      const caller = (ctx.state.caller ??= await verifiedCaller(tokens, ctx.get('Authorization')));
      // A token is valid in its own tenant (an operator's admin token in every one).
      if ((caller.tenant ?? defaultTenant) !== ctx.state.tenant && !caller.scopes.admin) {
        throw new OperationOutcomeError('forbidden', `The access token is not valid for tenant ${ctx.state.tenant}`);
      }
      if (level === 'admin' && !caller.scopes.admin) throw new OperationOutcomeError('forbidden', 'This needs an admin token (scope bulkflow/admin)');
    };
    return next();
  };
}

async function verifiedCaller(tokens: AccessTokens, authorizationHeader: string): Promise<Caller> {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorizationHeader);
  if (!match) throw new OperationOutcomeError('login', 'An access token is required (Authorization: Bearer)', { headers: { 'WWW-Authenticate': REALM } });
  try {
    return await tokens.verify(match[1]);
  } catch (err) {
    if (!(err instanceof InvalidTokenError)) throw err;
    const description = err.message.replace(/"/g, "'");
    throw new OperationOutcomeError(err.expired ? 'expired' : 'login', `Invalid access token: ${err.message}`, {
      headers: { 'WWW-Authenticate': `${REALM}, error="invalid_token", error_description="${description}"` },
    });
  }
}
