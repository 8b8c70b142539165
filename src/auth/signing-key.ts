/** The built-in token endpoint's ES384 key: created once, kept in PostgreSQL, shared by every API process. */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type JWK, type KeyLike } from 'jose';
import type { Pool } from 'pg';

export const ACCESS_TOKEN_ALG = 'ES384';

export interface SigningKey {
  kid: string;
  privateKey: KeyLike | Uint8Array;
  /** The public half, as the JWKS the resource server verifies with. */
  publicJwk: JWK;
}

export async function loadSigningKey(pool: Pool): Promise<SigningKey> {
  const existing = await pool.query<{ kid: string; private_jwk: JWK }>('SELECT kid, private_jwk FROM auth_signing_keys ORDER BY created_at LIMIT 1');
  if (existing.rows.length === 0) {
    const { privateKey } = await generateKeyPair(ACCESS_TOKEN_ALG, { extractable: true });
    const jwk = await exportJWK(privateKey);
    // Two processes starting at once: the first insert wins and both read it back.
    await pool.query('INSERT INTO auth_signing_keys (kid, private_jwk) SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM auth_signing_keys)', [randomUUID(), jwk]);
    return loadSigningKey(pool);
  }
  const { kid, private_jwk: jwk } = existing.rows[0];
  const { d: _private, ...publicJwk } = jwk;
  return { kid, privateKey: await importJWK(jwk, ACCESS_TOKEN_ALG), publicJwk: { ...publicJwk, kid, alg: ACCESS_TOKEN_ALG, use: 'sig' } };
}
