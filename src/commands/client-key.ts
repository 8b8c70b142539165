/**
 * A SMART Backend Services client's key pair for `bulkflow clients add --generate-key`, and the
 * signed client assertion `bulkflow token` sends. The private half is a JWK file (mode 0600,
 * never overwritten) that any SMART client library reads; the public half is registered.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';

const ALG = 'ES384';

/** Writes a new private JWK to `file` (refusing to replace one); returns the public JWK to register. */
export async function writeClientKey(file: string): Promise<JWK> {
  const { publicKey, privateKey } = await generateKeyPair(ALG, { extractable: true });
  const kid = randomUUID();
  writeFileSync(file, `${JSON.stringify({ ...(await exportJWK(privateKey)), kid, alg: ALG, use: 'sig' }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return { ...(await exportJWK(publicKey)), kid, alg: ALG, use: 'sig' };
}

/** A client assertion (RFC 7523, as SMART Backend Services asks): signed by the key in `file`, for `tokenEndpoint`, valid five minutes. */
export async function clientAssertion(file: string, clientId: string, tokenEndpoint: string): Promise<string> {
  const jwk = JSON.parse(readFileSync(file, 'utf8')) as JWK;
  if (!jwk.d) throw new Error(`${file} holds no private key`);
  const alg = jwk.alg ?? ALG;
  return new SignJWT({})
    .setProtectedHeader({ alg, kid: jwk.kid, typ: 'JWT' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(tokenEndpoint)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(await importJWK(jwk, alg));
}
