/**
 * The built-in SMART Backend Services token endpoint (`POST /auth/token`): the
 * `client_credentials` grant with a `private_key_jwt` client assertion, verified with jose
 * against the registered client's JWKS. Errors are OAuth 2.0 error responses
 * (`{error, error_description}`), as clients of a token endpoint expect.
 */
import type Router from '@koa/router';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Context } from 'koa';
import { access, newRouter } from '../access';
import type { AppState } from '../app-state';
import { readBodyText } from '../read-json-body';
import type { AccessTokens } from '../../auth/access-tokens';
import type { ClientRegistry, RegisteredClient } from '../../auth/clients';
import { ADMIN_SCOPE, grantScopes } from '../../auth/scopes';

export const TOKEN_PATH = '/auth/token';

/** The token endpoint as a client of `fhirBaseUrl` sees it: next to the FHIR base, under the same origin (and tenant prefix). */
export const tokenEndpointFor = (fhirBaseUrl: string, fhirBasePath: string) => `${fhirBaseUrl.slice(0, fhirBaseUrl.length - fhirBasePath.length)}${TOKEN_PATH}`;
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const ASSERTION_ALGORITHMS = ['RS384', 'ES384', 'RS256', 'ES256', 'PS384'];
/** The SMART Backend Services limit on a client assertion's lifetime. */
const MAX_ASSERTION_SECONDS = 300;

class OAuthError extends Error {
  constructor(
    readonly status: 400 | 401,
    readonly error: string,
    description: string,
  ) {
    super(description);
  }
}

export interface TokenEndpointDependencies {
  tokens: AccessTokens;
  registry: ClientRegistry;
  /** The configured public origin: an assertion's `aud` is the token URL under it (tenant prefix included)... */
  baseUrl: string;
  /** ...or one of these (AUTH_TOKEN_AUDIENCES). Never anything a request header says. */
  extraAudiences: string[];
}

export function tokenEndpointRouter(deps: TokenEndpointDependencies): Router<AppState> {
  const router = newRouter();
  const remoteKeys = new Map<string, JWTVerifyGetKey>();
  const keysOf = (client: RegisteredClient): JWTVerifyGetKey => {
    if (client.jwks) return createLocalJWKSet(client.jwks);
    let keys = remoteKeys.get(client.jwksUrl!);
    if (!keys) remoteKeys.set(client.jwksUrl!, (keys = createRemoteJWKSet(new URL(client.jwksUrl!))));
    return keys;
  };

  router.post(TOKEN_PATH, access.credentials, async (ctx: Context & { state: AppState }) => {
    ctx.set('Pragma', 'no-cache'); // RFC 6749 5.1, beside the declaration's Cache-Control: no-store
    try {
      if (!ctx.is('application/x-www-form-urlencoded')) throw new OAuthError(400, 'invalid_request', 'the token request must be application/x-www-form-urlencoded');
      const form = new URLSearchParams(await readBodyText(ctx, 65_536, () => new OAuthError(400, 'invalid_request', 'the token request is larger than 64 kB')));
      if (form.get('grant_type') !== 'client_credentials') throw new OAuthError(400, 'unsupported_grant_type', 'grant_type must be client_credentials');
      if (form.get('client_assertion_type') !== ASSERTION_TYPE) throw new OAuthError(400, 'invalid_request', `client_assertion_type must be ${ASSERTION_TYPE}`);
      const assertion = form.get('client_assertion');
      if (!assertion) throw new OAuthError(400, 'invalid_request', 'client_assertion is missing');
      const requested = (form.get('scope') ?? '').split(/\s+/).filter(Boolean);
      if (requested.length === 0) throw new OAuthError(400, 'invalid_scope', 'scope is missing');

      const clientId = await verifyAssertion(assertion, ctx, form.get('client_id'));
      const client = (await deps.registry.find(clientId))!;
      const scopes = grantScopes(requested, client.scopes);
      if (scopes.length === 0) throw new OAuthError(400, 'invalid_scope', `none of the requested scopes is granted to ${clientId}`);
      ctx.body = { access_token: await deps.tokens.issue(clientId, scopes, client.tenant), token_type: 'bearer', expires_in: deps.tokens.lifetimeSeconds, scope: scopes.join(' ') };
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      ctx.status = err.status;
      if (err.status === 401) ctx.set('WWW-Authenticate', 'Bearer realm="bulkflow"');
      ctx.body = { error: err.error, error_description: err.message };
    }
  });

  /** Checks the client assertion; returns the client id it authenticates. */
  async function verifyAssertion(assertion: string, ctx: Context & { state: AppState }, clientIdParameter: string | null): Promise<string> {
    let iss: string | undefined;
    let alg: string | undefined;
    try {
      iss = decodeJwt(assertion).iss;
      alg = decodeProtectedHeader(assertion).alg;
    } catch {
      throw new OAuthError(400, 'invalid_request', 'client_assertion is not a JWT');
    }
    if (!alg || !ASSERTION_ALGORITHMS.includes(alg)) throw new OAuthError(401, 'invalid_client', `the client assertion must be signed with one of ${ASSERTION_ALGORITHMS.join(', ')}`);
    const client = iss ? await deps.registry.find(iss) : undefined;
    if (!client) throw new OAuthError(401, 'invalid_client', 'the client assertion names no registered client (iss)');
    if (clientIdParameter !== null && clientIdParameter !== client.clientId) throw new OAuthError(401, 'invalid_client', 'client_id differs from the assertion');

    const audiences = [`${deps.baseUrl}${TOKEN_PATH}`, `${deps.baseUrl}/t/${ctx.state.tenant}${TOKEN_PATH}`, ...deps.extraAudiences];
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, keysOf(client), {
        issuer: client.clientId,
        subject: client.clientId,
        audience: audiences,
        algorithms: ASSERTION_ALGORITHMS,
        clockTolerance: 5,
        requiredClaims: ['exp', 'jti'],
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new OAuthError(401, 'invalid_client', 'the client assertion has expired');
      if (err instanceof errors.JWTClaimValidationFailed) throw new OAuthError(401, 'invalid_client', `the client assertion's ${err.claim} claim is not acceptable`);
      throw new OAuthError(401, 'invalid_client', 'the client assertion signature does not verify with the client\'s keys');
    }
    const exp = payload.exp!;
    if (exp - Date.now() / 1000 > MAX_ASSERTION_SECONDS + 5) throw new OAuthError(401, 'invalid_client', `the client assertion must expire within ${MAX_ASSERTION_SECONDS} s`);
    if (!(await deps.registry.useJti(client.clientId, String(payload.jti), new Date(exp * 1000)))) {
      throw new OAuthError(401, 'invalid_client', 'the client assertion was used before (jti)');
    }
    return client.clientId;
  }

  return router;
}

/** `[base]/.well-known/smart-configuration`: only what is supported. */
export function smartConfiguration(tokenEndpoint: string) {
  return {
    token_endpoint: tokenEndpoint,
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
    grant_types_supported: ['client_credentials'],
    scopes_supported: ['system/*.read', 'system/*.rs', 'system/*.cruds', ADMIN_SCOPE],
    capabilities: ['client-confidential-asymmetric', 'permission-v1', 'permission-v2'],
  };
}
