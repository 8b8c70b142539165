/**
 * Checks a GCS V4 signed URL the way Cloud Storage does (the emulator does not): rebuilds the
 * canonical request and the string to sign from the URL (the host as signed: its name, as on
 * storage.googleapis.com), and verifies X-Goog-Signature with the
 * service account's public key. https://cloud.google.com/storage/docs/authentication/signatures
 */
import { createHash, verify, type KeyObject } from 'node:crypto';

/** RFC 3986 percent-encoding, as V4 signing encodes query names and values. */
const encode = (text: string) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export function verifiesV4Signature(signedUrl: string, publicKey: KeyObject, method = 'GET'): boolean {
  const url = new URL(signedUrl);
  const signature = url.searchParams.get('X-Goog-Signature');
  if (!signature) return false;
  const query = [...url.searchParams.entries()]
    .filter(([name]) => name !== 'X-Goog-Signature')
    .map(([name, value]) => `${encode(name)}=${encode(value)}`)
    .sort()
    .join('&');
  const signedHeaders = url.searchParams.get('X-Goog-SignedHeaders') ?? 'host';
  const canonicalRequest = [method, url.pathname, query, `host:${url.hostname}\n`, signedHeaders, 'UNSIGNED-PAYLOAD'].join('\n');
  const credential = url.searchParams.get('X-Goog-Credential') ?? '';
  const scope = credential.slice(credential.indexOf('/') + 1);
  const stringToSign = ['GOOG4-RSA-SHA256', url.searchParams.get('X-Goog-Date'), scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  return verify('sha256', Buffer.from(stringToSign), publicKey, Buffer.from(signature, 'hex'));
}
