import { PassThrough, Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3ServiceException,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { assertSafeKey, OutputUnavailableError, type OutputStore } from './output-store';

/** Parts of a multipart upload: S3's 5 MiB minimum is too small for 8 MB reads to stay ahead. */
const PART_BYTES = 8 * 1024 * 1024;
/** Parts in flight per file (each holds PART_BYTES in memory). */
const PARTS_IN_FLIGHT = 2;
/** SigV4 presigned URLs live at most a week. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

const status = (err: unknown) => (err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined);
const isMissing = (err: unknown) => status(err) === 404 || (err instanceof S3ServiceException && (err.name === 'NoSuchKey' || err.name === 'NotFound'));
const bucketGone = (bucket: string) => (err: unknown) => {
  throw err instanceof S3ServiceException && err.name === 'NoSuchBucket' ? new OutputUnavailableError(`The output bucket ${bucket} does not exist`) : err;
};

/**
 * Export files as objects in one S3 bucket (AWS S3 or an S3-compatible server: MinIO, R2, Ceph,
 * SeaweedFS, versitygw). A file is one PutObject when small, a multipart upload otherwise: the
 * object appears only when the upload completes, so it is whole or absent; an upload that fails
 * is aborted, and one a killed process left behind is aborted by the next write of that key and
 * by the prefix's deletion (a bucket lifecycle rule that aborts incomplete uploads after a day
 * is the backstop; docs/operations.md). S3 has no rename: `move` copies, then deletes.
 */
export class S3OutputStore implements OutputStore {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix = '',
  ) {}

  private key(key: string): string {
    assertSafeKey(key);
    return this.prefix + key;
  }

  createWriter(key: string) {
    const Key = this.key(key);
    const stream = new PassThrough({ highWaterMark: 1024 * 1024 });
    // A writer destroyed by its activity (an error upstream) ends the upload instead of completing it.
    const destroyed = new Promise<never>((_, reject) => stream.once('error', reject));
    destroyed.catch(() => undefined);
    const upload = (async () => {
      await this.abortUploads(Key, true);
      const parts = new Upload({
        client: this.client,
        queueSize: PARTS_IN_FLIGHT,
        partSize: PART_BYTES,
        leavePartsOnError: false,
        // Presigned URLs fetch the object straight from the bucket: its metadata is the only place to say no-store.
        params: { Bucket: this.bucket, Key, Body: stream, ContentType: 'application/fhir+ndjson', CacheControl: 'no-store' },
      });
      const uploaded = parts.done();
      try {
        await Promise.race([uploaded, destroyed]);
      } catch (err) {
        // The SDK aborts its multipart upload on its own time; wait for it, then make sure no upload of this key is left.
        await parts.abort().catch(() => undefined);
        await uploaded.catch(() => undefined);
        await this.abortUploads(Key, true).catch(() => undefined);
        throw err;
      }
    })();
    // A failed upload stops reading the stream: fail the writer too, or it would wait on a full buffer forever.
    const done = upload.catch((err: unknown) => {
      stream.destroy(err as Error);
      return bucketGone(this.bucket)(err);
    });
    return { stream, done };
  }

  /** Aborts the unfinished multipart uploads of `Key` (exactly), or of every key under it when `exact` is false. */
  private async abortUploads(Key: string, exact: boolean): Promise<number> {
    let aborted = 0;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: Key, KeyMarker, UploadIdMarker }));
      for (const upload of page.Uploads ?? []) {
        if (exact && upload.Key !== Key) continue;
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: upload.Key, UploadId: upload.UploadId })).catch((err: unknown) => {
          if (!isMissing(err)) throw err;
        });
        aborted++;
      }
      if (!page.IsTruncated) return aborted;
      KeyMarker = page.NextKeyMarker;
      UploadIdMarker = page.NextUploadIdMarker;
    }
  }

  async openReader(key: string): Promise<Readable | undefined> {
    const Key = this.key(key);
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
      return object.Body as Readable;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async openFrom(key: string, start: number) {
    const Key = this.key(key);
    let size: number;
    try {
      size = Number((await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }))).ContentLength ?? 0);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    // A range that starts at the end is refused (416): an empty stream says the same.
    if (start >= size) return { stream: Readable.from([]), size };
    const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key, Range: `bytes=${start}-` }));
    return { stream: object.Body as Readable, size };
  }

  async move(from: string, to: string): Promise<void> {
    const [source, target] = [this.key(from), this.key(to)];
    try {
      await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: target, CopySource: `${this.bucket}/${encodeURIComponent(source)}` }));
    } catch (err) {
      // Retried after the delete: the source is gone and the target is there.
      if (isMissing(err) && (await this.exists(target))) return;
      throw err;
    }
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: source }));
  }

  private async exists(Key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const Prefix = this.key(prefix);
    const keys: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix, ContinuationToken })).catch(bucketGone(this.bucket));
      for (const object of page.Contents ?? []) keys.push(object.Key!.slice(this.prefix.length));
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return keys.sort();
  }

  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.list(prefix);
    for (let i = 0; i < keys.length; i += 1000) {
      const Objects = keys.slice(i, i + 1000).map((key) => ({ Key: this.prefix + key }));
      const result = await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects, Quiet: true } }));
      const failed = (result.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length > 0) throw new Error(`S3 refused to delete ${failed.length} objects under ${prefix}: ${failed[0].Code} ${failed[0].Message ?? ''}`);
    }
    // Uploads a killed writer left unfinished under the prefix hold storage until aborted.
    await this.abortUploads(this.key(prefix), false);
    return keys.length;
  }

  /** A SigV4 presigned GET for exactly this object, valid for `ttlSeconds` (at most a week), signed locally with the client's credentials. */
  async signedUrl(key: string, ttlSeconds: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key) }), { expiresIn: Math.min(ttlSeconds, MAX_PRESIGN_SECONDS) });
  }
}
