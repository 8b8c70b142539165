/**
 * GCS V4 signed URLs: rebuilt from the URL alone (canonical request, string to sign), the
 * signature must verify with the service account's public key; the emulator does not check it.
 */
import { createHash, createPublicKey, createVerify, generateKeyPairSync } from 'node:crypto';
import { Storage } from '@google-cloud/storage';
import { GcsOutputStore } from '../../src/output/gcs-output-store';

describe('signed download URLs', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const storage = new Storage({
    apiEndpoint: 'http://127.0.0.1:4443',
    projectId: 'test',
    credentials: { client_email: 'signer@example.iam.gserviceaccount.com', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
  });
  const store = new GcsOutputStore(storage, 'exports', 'tenant-a/', 'http://127.0.0.1:4443');

  function verifies(url: URL, key = publicKey): boolean {
    const query = [...url.searchParams].filter(([k]) => k !== 'X-Goog-Signature');
    const enc = (v: string) => encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    const canonicalQuery = query.map(([k, v]) => `${enc(k)}=${enc(v)}`).sort().join('&');
    const signedHeaders = url.searchParams.get('X-Goog-SignedHeaders')!;
    const canonicalRequest = ['GET', url.pathname, canonicalQuery, `host:${url.hostname}\n`, signedHeaders, 'UNSIGNED-PAYLOAD'].join('\n');
    const scope = url.searchParams.get('X-Goog-Credential')!.split('/').slice(1).join('/');
    const stringToSign = ['GOOG4-RSA-SHA256', url.searchParams.get('X-Goog-Date'), scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
    return createVerify('RSA-SHA256').update(stringToSign).verify(key, Buffer.from(url.searchParams.get('X-Goog-Signature')!, 'hex'));
  }

  it('points at the object on the configured host, for the configured time, signed with the service-account key', async () => {
    const url = new URL(await store.signedUrl('job1/Patient-0000-0000.ndjson', 600));
    expect(url.origin).toBe('http://127.0.0.1:4443');
    expect(url.pathname).toBe('/exports/tenant-a/job1/Patient-0000-0000.ndjson');
    expect(url.searchParams.get('X-Goog-Algorithm')).toBe('GOOG4-RSA-SHA256');
    expect(url.searchParams.get('X-Goog-Expires')).toBe('600');
    expect(url.searchParams.get('X-Goog-Credential')).toMatch(/^signer@example\.iam\.gserviceaccount\.com\//);
    expect(verifies(url)).toBe(true);
  });

  it('does not verify when the URL was altered or with another key', async () => {
    const url = new URL(await store.signedUrl('job1/Patient-0000-0000.ndjson', 600));
    const longer = new URL(url);
    longer.searchParams.set('X-Goog-Expires', '604800');
    expect(verifies(longer)).toBe(false);
    const other = new URL(url);
    other.pathname = '/exports/tenant-b/job1/Patient-0000-0000.ndjson';
    expect(verifies(other)).toBe(false);
    expect(verifies(url, createPublicKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' })))).toBe(false);
  });
});
