/**
 * One contract, four backends: every promise bulkflow's export engine relies on, checked against
 * local files and real servers (fake-gcs-server, versitygw for S3, Azurite for Azure Blob). A file
 * is whole or absent (also while it streams, and when its writer fails: the old content stays);
 * writing a key again replaces it, large files included (multipart / block uploads); `move` is
 * idempotent; ranged reads; listing and deletion by prefix stay inside the store's own prefix;
 * unsafe keys never reach a path or a bucket. Signed URLs: the storage server itself serves the
 * object, and refuses (403) a URL with one character of its path or signature changed, or one
 * used after it expired (S3 and Azure; the GCS emulator checks no signature, so GCS URLs are
 * verified as Cloud Storage would in export-signed-urls.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { Storage } from '@google-cloud/storage';
import { AzureOutputStore } from '../../src/output/azure-output-store';
import { GcsOutputStore } from '../../src/output/gcs-output-store';
import { LocalOutputStore } from '../../src/output/local-output-store';
import type { OutputStore } from '../../src/output/output-store';
import { S3OutputStore } from '../../src/output/s3-output-store';
import { testEnvironment, testS3Client } from '../harness/environment';

jest.setTimeout(120_000);

interface Backend {
  name: string;
  /** A store under a prefix of its own, and one under a neighbouring prefix (shares a string prefix, not the folder). */
  make(prefix: string): OutputStore;
  /** A store that cannot write: its bucket, container or folder does not exist. */
  missing(): OutputStore;
  /** The content type and Cache-Control the backend stored with an object, where it keeps them. */
  headers?(prefix: string, key: string): Promise<{ contentType?: string; cacheControl?: string }>;
  /** Whether the server itself checks signed URLs. */
  serverChecksSignatures: boolean;
  cleanup?(): void;
}

const localRoot = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-contract-'));
const storage = new Storage({ apiEndpoint: testEnvironment.gcsEndpoint, projectId: 'bulkflow-test' });
const s3 = testS3Client();
const blobs = () => BlobServiceClient.fromConnectionString(testEnvironment.azureConnectionString);

const backends: Backend[] = [
  {
    name: 'local files',
    make: (prefix) => new LocalOutputStore(path.join(localRoot, prefix)),
    missing: () => new LocalOutputStore('/dev/null/exports'),
    serverChecksSignatures: false,
    cleanup: () => rmSync(localRoot, { recursive: true, force: true }),
  },
  {
    name: 'GCS (fake-gcs-server)',
    make: (prefix) => new GcsOutputStore(storage, testEnvironment.gcsBucket, prefix, testEnvironment.gcsEndpoint),
    missing: () => new GcsOutputStore(storage, 'no-such-bucket', '', testEnvironment.gcsEndpoint),
    headers: async (prefix, key) => {
      const [m] = await storage.bucket(testEnvironment.gcsBucket).file(prefix + key).getMetadata();
      return { contentType: m.contentType, cacheControl: m.cacheControl };
    },
    serverChecksSignatures: false,
  },
  {
    name: 'S3 (versitygw)',
    make: (prefix) => new S3OutputStore(s3, testEnvironment.s3Bucket, prefix),
    missing: () => new S3OutputStore(s3, 'no-such-bucket'),
    headers: async (prefix, key) => {
      const { HeadObjectCommand } = await import('@aws-sdk/client-s3');
      const head = await s3.send(new HeadObjectCommand({ Bucket: testEnvironment.s3Bucket, Key: prefix + key }));
      return { contentType: head.ContentType, cacheControl: head.CacheControl };
    },
    serverChecksSignatures: true,
  },
  {
    name: 'Azure Blob (Azurite)',
    make: (prefix) => new AzureOutputStore(blobs(), testEnvironment.azureContainer, prefix),
    missing: () => new AzureOutputStore(blobs(), 'no-such-container'),
    headers: async (prefix, key) => {
      const properties = await blobs().getContainerClient(testEnvironment.azureContainer).getBlobClient(prefix + key).getProperties();
      return { contentType: properties.contentType, cacheControl: properties.cacheControl };
    },
    serverChecksSignatures: true,
  },
];

afterAll(() => backends.forEach((b) => b.cleanup?.()));

const text = async (stream: Readable | undefined) => {
  if (!stream) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

async function write(store: OutputStore, key: string, content: string | string[]): Promise<void> {
  const { stream, done } = store.createWriter(key);
  await pipeline(Readable.from(typeof content === 'string' ? [content] : content), stream as Writable);
  await done;
}

/** About 20 MB of NDJSON lines: more than two 8 MB parts or blocks. */
const largeLines = (tag: string) => Array.from({ length: 40_000 }, (_, i) => `${JSON.stringify({ resourceType: 'Observation', id: `${tag}-${i}`, note: 'x'.repeat(480) })}\n`);

describe.each(backends)('the output store contract on $name', (backend) => {
  const prefix = `contract-${Date.now()}-${Math.random().toString(36).slice(2, 6)}/`;
  const store = backend.make(prefix);

  it('writes a streamed file whole, visible only once done, with its content type and no-store', async () => {
    const key = 'job1/Patient-0000-0000.ndjson';
    const lines = Array.from({ length: 5000 }, (_, i) => `${JSON.stringify({ resourceType: 'Patient', id: `p${i}` })}\n`);
    const { stream, done } = store.createWriter(key);
    stream.write(lines.slice(0, 2500).join(''));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await text(await store.openReader(key))).toBeUndefined();
    await pipeline(Readable.from(lines.slice(2500)), stream as Writable);
    await done;
    expect(await text(await store.openReader(key))).toBe(lines.join(''));
    if (backend.headers) {
      const headers = await backend.headers(prefix, key);
      expect(headers.cacheControl).toBe('no-store');
      expect(headers.contentType).toMatch(/ndjson/);
    }
  });

  it('replaces a file written again, a large one (several parts or blocks) included', async () => {
    const key = 'job2/Observation-0000-0000.ndjson';
    await write(store, key, largeLines('first'));
    const second = largeLines('second');
    await write(store, key, second);
    const read = await text(await store.openReader(key));
    expect(read?.length).toBe(second.join('').length);
    expect(read === second.join('')).toBe(true);
  });

  it('keeps the old content when a rewrite fails part way (never half a file)', async () => {
    const key = 'job3/Encounter-0000-0000.ndjson';
    await write(store, key, 'the complete first version\n');
    const { stream, done } = store.createWriter(key);
    const lines = largeLines('broken');
    for (const line of lines.slice(0, 25_000)) if (!stream.write(line)) await new Promise((resolve) => stream.once('drain', resolve));
    stream.destroy(new Error('the partition failed'));
    await expect(done).rejects.toThrow();
    expect(await text(await store.openReader(key))).toBe('the complete first version\n');
  });

  it('fails the writer, never leaves it waiting, when the store cannot take the file', async () => {
    const { stream, done } = backend.missing().createWriter('job0/Patient-0000-0000.ndjson');
    // Far more than any buffer holds: a writer whose upload died would wait for 'drain' forever.
    await pipeline(Readable.from(largeLines('nowhere')), stream as Writable).catch(() => undefined);
    await expect(done).rejects.toThrow();
  }, 30_000);

  it('moves a file, and a move done again finds it moved', async () => {
    await write(store, 'staging/part-1.parquet', 'moved content');
    await store.move('staging/part-1.parquet', 'table/run=1/part-1.parquet');
    await store.move('staging/part-1.parquet', 'table/run=1/part-1.parquet');
    expect(await text(await store.openReader('table/run=1/part-1.parquet'))).toBe('moved content');
    expect(await store.openReader('staging/part-1.parquet')).toBeUndefined();
    await expect(store.move('staging/none.parquet', 'table/run=1/none.parquet')).rejects.toThrow();
  });

  it('reads from an offset with the whole size, an offset at the end as empty, a missing file as absent', async () => {
    const content = 'line one\nline two\nline three\n';
    await write(store, 'job4/Patient-0000-0000.ndjson', content);
    for (const start of [0, 9, content.length - 1, content.length]) {
      const from = await store.openFrom('job4/Patient-0000-0000.ndjson', start);
      expect([from?.size, await text(from?.stream)]).toEqual([content.length, content.slice(start)]);
    }
    expect(await store.openFrom('job4/none.ndjson', 0)).toBeUndefined();
    expect(await store.openReader('job4/none.ndjson')).toBeUndefined();
  });

  it('lists and deletes by prefix, inside its own prefix only', async () => {
    const neighbour = backend.make(`${prefix.slice(0, -1)}-neighbour/`);
    for (const key of ['job5/b.ndjson', 'job5/a.ndjson', 'job6/c.ndjson']) await write(store, key, key);
    await write(neighbour, 'job5/a.ndjson', 'keep me');
    expect(await store.list('job5/')).toEqual(['job5/a.ndjson', 'job5/b.ndjson']);
    expect(await store.deletePrefix('job5/')).toBe(2);
    expect(await store.list('job5/')).toEqual([]);
    expect(await store.list('job6/')).toEqual(['job6/c.ndjson']);
    expect(await text(await neighbour.openReader('job5/a.ndjson'))).toBe('keep me');
    await neighbour.deletePrefix('job5/');
  });

  it('refuses unsafe keys before they reach a path or a bucket', async () => {
    expect(() => store.createWriter('../escape.ndjson')).toThrow(/unsafe output key/);
    await expect(store.openReader('job1/../../x')).rejects.toThrow(/unsafe output key/);
    await expect(store.list('/abs/')).rejects.toThrow(/unsafe output key/);
  });

  if (backend.serverChecksSignatures) it('hands out signed URLs that the server serves, and refuses when changed or expired', async () => {
    const key = 'job7/Patient-0000-0000.ndjson';
    await write(store, key, 'signed content\n');
    await write(store, 'job7/Patient-0000-0001.ndjson', 'another file\n');
    const url = await store.signedUrl!(key, 60);
    const served = await fetch(url);
    expect([served.status, await served.text()]).toEqual([200, 'signed content\n']);
    // One character of the path: the other file, with this file's signature.
    const otherFile = url.replace('Patient-0000-0000', 'Patient-0000-0001');
    expect(otherFile).not.toBe(url);
    expect((await fetch(otherFile)).status).toBe(403);
    // One character of the signature.
    const signature = /(X-Amz-Signature|sig)=([^&]+)/.exec(url)!;
    const value = decodeURIComponent(signature[2]);
    const flipped = `${value.slice(0, 5)}${value[5] === 'a' ? 'b' : 'a'}${value.slice(6)}`;
    expect((await fetch(url.replace(signature[0], `${signature[1]}=${encodeURIComponent(flipped)}`))).status).toBe(403);
    // Read-only: the URL does not overwrite the file.
    expect((await fetch(url, { method: 'PUT', body: 'overwritten', headers: { 'x-ms-blob-type': 'BlockBlob' } })).status).toBe(403);
    expect(await text(await store.openReader(key))).toBe('signed content\n');
    // Used after it expired.
    const short = await store.signedUrl!(key, 1);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect((await fetch(short)).status).toBe(403);
  });

  if (backend.name.startsWith('S3')) {
    it('leaves no multipart upload behind when a large write fails or is interrupted', async () => {
      const key = 'job8/Observation-0000-0000.ndjson';
      const uploads = async () => (await s3.send(new ListMultipartUploadsCommand({ Bucket: testEnvironment.s3Bucket, Prefix: `${prefix}job8/` }))).Uploads ?? [];
      const { stream, done } = store.createWriter(key);
      for (const line of largeLines('failing')) if (!stream.write(line)) await new Promise((resolve) => stream.once('drain', resolve));
      expect((await uploads()).length).toBe(1); // the parts so far belong to an open multipart upload
      stream.destroy(new Error('the partition failed'));
      await expect(done).rejects.toThrow();
      expect(await uploads()).toEqual([]);
    });

    it("aborts the upload a killed writer left: at the key's next write, and under a deleted prefix", async () => {
      const { CreateMultipartUploadCommand, UploadPartCommand } = await import('@aws-sdk/client-s3');
      const orphan = async (key: string) => {
        const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: testEnvironment.s3Bucket, Key: `${prefix}${key}` }));
        await s3.send(new UploadPartCommand({ Bucket: testEnvironment.s3Bucket, Key: `${prefix}${key}`, UploadId, PartNumber: 1, Body: Buffer.alloc(6 * 1024 * 1024, 'a') }));
      };
      const uploads = async () => ((await s3.send(new ListMultipartUploadsCommand({ Bucket: testEnvironment.s3Bucket, Prefix: `${prefix}job9/` }))).Uploads ?? []).map((u) => u.Key);
      await orphan('job9/Patient-0000-0000.ndjson');
      await orphan('job9/Patient-0000-0001.ndjson');
      expect((await uploads()).sort()).toEqual([`${prefix}job9/Patient-0000-0000.ndjson`, `${prefix}job9/Patient-0000-0001.ndjson`]);
      await write(store, 'job9/Patient-0000-0000.ndjson', 'retried\n');
      expect(await uploads()).toEqual([`${prefix}job9/Patient-0000-0001.ndjson`]);
      await store.deletePrefix('job9/');
      expect(await uploads()).toEqual([]);
    });
  }
});
