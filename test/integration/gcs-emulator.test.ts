/**
 * bulkflow's GCS output store against the GCS emulator: a streamed part written whole and read
 * back byte for byte, never visible half-written, with the metadata bulkflow sets (content type,
 * `Cache-Control: no-store`); keys listed and deleted by prefix, within the store's own prefix only;
 * an unknown key read as absent; unsafe keys refused before they reach the bucket.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Storage } from '@google-cloud/storage';
import { GcsOutputStore } from '../../src/output/gcs-output-store';
import { testEnvironment } from '../harness/environment';

describe("bulkflow's GCS output store on the emulator", () => {
  const storage = new Storage({ apiEndpoint: testEnvironment.gcsEndpoint, projectId: 'bulkflow-test' });
  const bucket = storage.bucket(testEnvironment.gcsBucket);
  const prefix = `gcs-store-${Date.now()}/`;
  const store = new GcsOutputStore(storage, testEnvironment.gcsBucket, prefix, testEnvironment.gcsEndpoint);
  const lines = Array.from({ length: 5000 }, (_, i) => `${JSON.stringify({ resourceType: 'Patient', id: `p${i}`, note: 'x'.repeat(i % 50) })}\n`);

  const readAll = async (key: string) => {
    const reader = await store.openReader(key);
    if (!reader) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of reader) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };

  it('writes a streamed part whole, visible only once done, with its content type and no-store', async () => {
    const key = 'job1/Patient-0000-0000.ndjson';
    const { stream, done } = store.createWriter(key);
    const half = Math.floor(lines.length / 2);
    stream.write(lines.slice(0, half).join(''));
    expect(await readAll(key)).toBeUndefined(); // nothing half-written to read
    await pipeline(Readable.from(lines.slice(half)), stream as Writable);
    await done;
    expect(await readAll(key)).toBe(lines.join(''));
    const [metadata] = await bucket.file(`${prefix}${key}`).getMetadata();
    expect(metadata.cacheControl).toBe('no-store');
    expect(metadata.contentType).toMatch(/ndjson/);
  });

  it('lists and deletes by prefix, inside its own prefix only', async () => {
    for (const key of ['job2/a.ndjson', 'job2/b.ndjson', 'job3/c.ndjson']) {
      const { stream, done } = store.createWriter(key);
      stream.end(key);
      await done;
    }
    const neighbour = bucket.file(`${prefix.slice(0, -1)}-neighbour/job2/a.ndjson`); // shares a string prefix, not the folder
    await neighbour.save('keep me');
    expect((await store.list('job2/')).sort()).toEqual(['job2/a.ndjson', 'job2/b.ndjson']);
    expect(await store.deletePrefix('job2/')).toBe(2);
    expect(await store.list('job2/')).toEqual([]);
    expect(await store.list('job3/')).toEqual(['job3/c.ndjson']);
    expect((await neighbour.exists())[0]).toBe(true);
    await neighbour.delete();
  });

  it('reads an unknown key as absent and refuses unsafe keys before they reach the bucket', async () => {
    expect(await store.openReader('job9/none.ndjson')).toBeUndefined();
    expect(() => store.createWriter('../escape.ndjson')).toThrow(/unsafe output key/);
    await expect(store.openReader('job1/../../x')).rejects.toThrow(/unsafe output key/);
  });
});
