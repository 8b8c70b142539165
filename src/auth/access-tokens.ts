/**
 * Access tokens: issued by the built-in token endpoint (ES384, signed with the key in
 * PostgreSQL) and verified for every protected request, also when a trusted external
 * authorization server issued them (its JWKS fetched and cached by jose).
 */
import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, errors, jwtVerify, SignJWT, type JWTVerifyGetKey } from 'jose';
import { ACCESS_TOKEN_ALG, type SigningKey } from './signing-key';
import { Scopes } from './scopes';

export interface TrustedIssuer {
  issuer: string;
  jwksUrl: string;
}

/** Who made a request: the client (and issuer) a verified token names, and what it may do. */
export interface Caller {
  clientId: string;
  issuer: string;
  /** The owner recorded on jobs this caller starts (the client id; `issuer#client` for external issuers). */
  owner: string;
  scopes: Scopes;
  /** The tenant the token is valid for (its `tenant` claim); unset: the default tenant. */
  tenant?: string;
}

export class InvalidTokenError extends Error {
  constructor(
    message: string,
    readonly expired = false,
  ) {
    super(message);
  }
}

const ACCEPTED_ALGORITHMS = ['ES384', 'RS384', 'ES256', 'RS256', 'PS384'];

export class AccessTokens {
  private readonly keys = new Map<string, JWTVerifyGetKey>();

  constructor(
    private readonly options: {
      /** This server's issuer URL (`<BASE_URL>/auth`). */
      issuer: string;
      /** The audience every access token must name (the FHIR base URL). */
      audience: string;
      key: SigningKey;
      lifetimeSeconds: number;
      trusted: TrustedIssuer[];
    },
  ) {
    this.keys.set(options.issuer, createLocalJWKSet({ keys: [options.key.publicJwk] }));
    for (const t of options.trusted) this.keys.set(t.issuer, createRemoteJWKSet(new URL(t.jwksUrl)));
  }

  get issuer(): string {
    return this.options.issuer;
  }

  get lifetimeSeconds(): number {
    return this.options.lifetimeSeconds;
  }

  async issue(clientId: string, scopes: string[], tenant?: string): Promise<string> {
    return new SignJWT({ scope: scopes.join(' '), client_id: clientId, ...(tenant ? { tenant } : {}) })
      .setProtectedHeader({ alg: ACCESS_TOKEN_ALG, kid: this.options.key.kid, typ: 'at+jwt' })
      .setIssuer(this.options.issuer)
      .setSubject(clientId)
      .setAudience(this.options.audience)
      .setIssuedAt()
      .setExpirationTime(`${this.options.lifetimeSeconds}s`)
      .setJti(randomUUID())
      .sign(this.options.key.privateKey);
  }

  /** Verifies signature, issuer, audience, exp and nbf; throws InvalidTokenError. */
  async verify(token: string): Promise<Caller> {
    let issuer: string | undefined;
    try {
      issuer = decodeJwt(token).iss;
    } catch {
      throw new InvalidTokenError('the access token is not a JWT');
    }
    const keys = issuer ? this.keys.get(issuer) : undefined;
    if (!issuer || !keys) throw new InvalidTokenError('the access token comes from an issuer this server does not trust');
    try {
      const { payload } = await jwtVerify(token, keys, { issuer, audience: this.options.audience, algorithms: ACCEPTED_ALGORITHMS, clockTolerance: 5 });
      const clientId = String(payload.client_id ?? payload.sub ?? '');
      if (!clientId) throw new InvalidTokenError('the access token names no client');
      const owner = issuer === this.options.issuer ? clientId : `${issuer}#${clientId}`;
      const tenant = typeof payload.tenant === 'string' ? payload.tenant : undefined;
      return { clientId, issuer, owner, tenant, scopes: Scopes.parse(typeof payload.scope === 'string' ? payload.scope : '') };
    } catch (err) {
      if (err instanceof InvalidTokenError) throw err;
      if (err instanceof errors.JWTExpired) throw new InvalidTokenError('the access token has expired', true);
      if (err instanceof errors.JWTClaimValidationFailed) throw new InvalidTokenError(`the access token's ${err.claim} claim is not acceptable`);
      throw new InvalidTokenError('the access token could not be verified');
    }
  }
}
