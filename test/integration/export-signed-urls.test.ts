/** DOWNLOADS_REQUIRE_TOKEN=false with GCS: the manifest lists V4 signed URLs that download without a token. */
import { generatePopulation } from '../../src/generate/population';
import { kickOff, pollUntilDone, startExportStack, testServiceAccountPublicKey, type ExportStack } from '../support/export-stack';
import { verifiesV4Signature } from '../support/gcs-signature';

describe('$export with signed download URLs (GCS emulator)', () => {
  let stack: ExportStack;
  const resources = [...generatePopulation({ patients: 2, seed: 12 })];

  beforeAll(async () => {
    stack = await startExportStack({ backend: 'gcs', signedUrlTtlSeconds: 120 });
    await stack.store.write(resources.map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  it('lists signed URLs with the configured expiry and requiresAccessToken false; they download without a token, no-store', async () => {
    const { manifest } = await pollUntilDone(await kickOff(stack, '?_type=Patient,Encounter'));
    expect(manifest.requiresAccessToken).toBe(false);
    expect(manifest.output.length).toBe(2);
    for (const item of manifest.output) {
      const url = new URL(item.url);
      expect(url.searchParams.get('X-Goog-Algorithm')).toBe('GOOG4-RSA-SHA256');
      expect(url.searchParams.get('X-Goog-Expires')).toBe('120');
      expect(url.pathname).not.toContain('/fhir/bulkfiles/');
      // The emulator serves any URL: check the signature as Cloud Storage would, and that it covers the object.
      expect(verifiesV4Signature(item.url, testServiceAccountPublicKey())).toBe(true);
      const other = new URL(item.url);
      other.pathname = other.pathname.replace(/[^/]+$/, 'Observation-0000-0000.ndjson');
      expect(verifiesV4Signature(other.toString(), testServiceAccountPublicKey())).toBe(false);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      // Served by the bucket, not bulkflow: the object's metadata keeps shared caches away.
      expect(res.headers.get('cache-control')).toBe('no-store');
      const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as { resourceType: string });
      expect(lines).toHaveLength(item.count);
      expect(lines.every((l) => l.resourceType === item.type)).toBe(true);
    }
  });
});
