/** Registered SMART Backend Services clients of a test stack, and the tokens its endpoint issues them. */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { ClientRegistry } from '../../src/auth/clients';
import type { ExportStack } from './export-stack';

export interface SmartClient {
  id: string;
  alg: 'ES384' | 'RS384';
  privateKey: KeyLike;
}

export interface AssertionClaims {
  aud?: string;
  exp?: string | number;
  jti?: string;
  iss?: string;
  sub?: string;
}

export class SmartClients {
  readonly tokenUrl: string;

  constructor(private readonly stack: ExportStack) {
    this.tokenUrl = `${stack.url}/auth/token`;
  }

  async register(id: string, alg: SmartClient['alg'], scopes: string[], tenant = this.stack.store.tenant): Promise<SmartClient> {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    await new ClientRegistry(this.stack.pool).save({ clientId: id, scopes, tenant, jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: `${id}-key`, alg }] } });
    return { id, alg, privateKey };
  }

  assertion(client: SmartClient, claims: AssertionClaims = {}, key = client.privateKey): Promise<string> {
    return new SignJWT({})
      .setProtectedHeader({ alg: client.alg, kid: `${client.id}-key` })
      .setIssuer(claims.iss ?? client.id)
      .setSubject(claims.sub ?? client.id)
      .setAudience(claims.aud ?? this.tokenUrl)
      .setExpirationTime(claims.exp ?? '4m')
      .setJti(claims.jti ?? randomUUID())
      .sign(key);
  }

  async tokenRequest(client: SmartClient, scope: string, claims: AssertionClaims = {}): Promise<Record<string, string>> {
    return {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await this.assertion(client, claims),
      scope,
    };
  }

  requestToken(fields: Record<string, string>, headers: Record<string, string> = {}, url = this.tokenUrl): Promise<Response> {
    return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(fields).toString() });
  }

  async tokenFor(client: SmartClient, scope: string): Promise<string> {
    const res = await this.requestToken(await this.tokenRequest(client, scope));
    if (res.status !== 200) throw new Error(`token answered ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { access_token: string }).access_token;
  }
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
