/** The registry of SMART Backend Services clients the built-in token endpoint serves (managed by `bulkflow clients`). */
import type { JSONWebKeySet } from 'jose';
import type { Pool } from 'pg';
import { TENANT_ID } from '../tenant-id';

export interface RegisteredClient {
  clientId: string;
  jwks?: JSONWebKeySet;
  jwksUrl?: string;
  /** Scopes the client may be granted. */
  scopes: string[];
  /** The tenant its tokens are valid for (default `default`). */
  tenant?: string;
}

const CLIENT_ID = /^[A-Za-z0-9._~-]{1,128}$/;

export class ClientRegistry {
  constructor(private readonly pool: Pool) {}

  async save(client: RegisteredClient): Promise<void> {
    if (!CLIENT_ID.test(client.clientId)) throw new Error(`client id ${JSON.stringify(client.clientId)} must be 1-128 of A-Z a-z 0-9 . _ ~ -`);
    if ((client.jwks === undefined) === (client.jwksUrl === undefined)) throw new Error('a client needs either a JWKS or a JWKS URL');
    if (client.jwksUrl !== undefined && !/^https?:\/\//.test(client.jwksUrl)) throw new Error('the JWKS URL must be http(s)');
    if (client.jwks !== undefined && !Array.isArray(client.jwks.keys)) throw new Error('the JWKS must have a keys array');
    if (client.tenant !== undefined && !TENANT_ID.test(client.tenant)) throw new Error(`tenant ${JSON.stringify(client.tenant)} is not a tenant id`);
    await this.pool.query(
      `INSERT INTO auth_clients (client_id, jwks, jwks_url, scopes, tenant) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (client_id) DO UPDATE SET jwks = EXCLUDED.jwks, jwks_url = EXCLUDED.jwks_url, scopes = EXCLUDED.scopes, tenant = EXCLUDED.tenant`,
      [client.clientId, client.jwks ? JSON.stringify(client.jwks) : null, client.jwksUrl ?? null, client.scopes.join(' '), client.tenant ?? 'default'],
    );
  }

  async find(clientId: string): Promise<RegisteredClient | undefined> {
    const { rows } = await this.pool.query<{ client_id: string; jwks: JSONWebKeySet | null; jwks_url: string | null; scopes: string; tenant: string }>(
      'SELECT client_id, jwks, jwks_url, scopes, tenant FROM auth_clients WHERE client_id = $1',
      [clientId],
    );
    const row = rows[0];
    return (
      row && { clientId: row.client_id, jwks: row.jwks ?? undefined, jwksUrl: row.jwks_url ?? undefined, scopes: row.scopes.split(' ').filter(Boolean), tenant: row.tenant }
    );
  }

  async list(): Promise<RegisteredClient[]> {
    const { rows } = await this.pool.query<{ client_id: string }>('SELECT client_id FROM auth_clients ORDER BY client_id');
    return Promise.all(rows.map(async (r) => (await this.find(r.client_id))!));
  }

  async remove(clientId: string): Promise<boolean> {
    return ((await this.pool.query('DELETE FROM auth_clients WHERE client_id = $1', [clientId])).rowCount ?? 0) > 0;
  }

  /** Records an assertion id; false when it was seen before (a replay). Forgets expired ones. */
  async useJti(clientId: string, jti: string, expiresAt: Date): Promise<boolean> {
    await this.pool.query('DELETE FROM auth_used_jtis WHERE expires_at < now()');
    const { rowCount } = await this.pool.query('INSERT INTO auth_used_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
      clientId,
      jti,
      expiresAt,
    ]);
    return rowCount === 1;
  }
}
