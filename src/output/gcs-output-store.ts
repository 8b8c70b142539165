import type { Storage } from '@google-cloud/storage';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { assertSafeKey, OutputUnavailableError, type OutputStore } from './output-store';

/** An object write or a listing answered 404: what is missing is the bucket itself. */
const bucketGone = (bucket: string) => (err: unknown) => {
  throw (err as { code?: unknown } | null)?.code === 404 ? new OutputUnavailableError(`The output bucket ${bucket} does not exist`) : err;
};

/** Export files as objects in one GCS bucket (or fake-gcs-server through `apiEndpoint`). */
export class GcsOutputStore implements OutputStore {
  constructor(
    private readonly storage: Storage,
    private readonly bucketName: string,
    private readonly prefix = '',
    /** Where signed URLs point: the emulator's endpoint; unset, storage.googleapis.com. */
    private readonly signedUrlHost?: string,
  ) {}

  /**
   * A V4 signed URL for reading the file for `ttlSeconds`, signed locally with the client's
   * service-account key (no network call).
   */
  async signedUrl(key: string, ttlSeconds: number): Promise<string> {
    const [url] = await this.file(key).getSignedUrl({
      version: 'v4',
      action: 'read',
      expires: Date.now() + ttlSeconds * 1000,
      ...(this.signedUrlHost ? { host: this.signedUrlHost } : {}),
    });
    return url;
  }

  private file(key: string) {
    assertSafeKey(key);
    return this.storage.bucket(this.bucketName).file(this.prefix + key);
  }

  createWriter(key: string) {
    // Parts are bounded in size and rewritten whole on retry, so one streaming request per part
    // (no resumable session) is enough; it also keeps the content type on the emulator.
    const stream = this.file(key).createWriteStream({
      resumable: false,
      // Signed URLs fetch the object straight from GCS: its metadata is the only place to say no-store.
      metadata: { contentType: 'application/fhir+ndjson', cacheControl: 'no-store' },
    });
    return { stream, done: finished(stream).catch(bucketGone(this.bucketName)) };
  }

  async openReader(key: string) {
    const file = this.file(key);
    const [exists] = await file.exists();
    return exists ? file.createReadStream() : undefined;
  }

  async openFrom(key: string, start: number) {
    const file = this.file(key);
    const [metadata] = await file.getMetadata().catch((err: { code?: unknown }) => {
      if (err.code === 404) return [undefined];
      throw err;
    });
    if (!metadata) return undefined;
    const size = Number(metadata.size);
    // GCS reads a range that starts at the end as an error: an empty stream says the same.
    return { stream: start >= size ? Readable.from([]) : file.createReadStream({ start }), size };
  }

  async move(from: string, to: string): Promise<void> {
    const target = this.file(to);
    try {
      await this.file(from).move(target);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 404 || !(await target.exists())[0]) throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    assertSafeKey(prefix);
    const [files] = await this.storage.bucket(this.bucketName).getFiles({ prefix: this.prefix + prefix }).catch(bucketGone(this.bucketName));
    return files.map((f) => f.name.slice(this.prefix.length)).sort();
  }

  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.list(prefix);
    await Promise.all(keys.map((key) => this.file(key).delete({ ignoreNotFound: true })));
    return keys.length;
  }
}
