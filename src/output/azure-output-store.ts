import { PassThrough, Readable } from 'node:stream';
import {
  BlobSASPermissions,
  generateBlobSASQueryParameters,
  RestError,
  SASProtocol,
  StorageSharedKeyCredential,
  type BlobServiceClient,
  type ContainerClient,
  type UserDelegationKey,
} from '@azure/storage-blob';
import { assertSafeKey, OutputUnavailableError, type OutputStore } from './output-store';

/** Blocks of a block blob upload, and blocks in flight per file (each holds one in memory). */
const BLOCK_BYTES = 8 * 1024 * 1024;
const BLOCKS_IN_FLIGHT = 2;
/** A user delegation key lives at most seven days; bulkflow asks for one a day longer than the URL it signs needs. */
const DELEGATION_KEY_MS = 24 * 3600 * 1000;
const MAX_DELEGATION_MS = 7 * 24 * 3600 * 1000 - 10 * 60 * 1000;
/** Signatures start a few minutes early: a client whose clock runs behind the service's still reads. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

const isMissing = (err: unknown) => err instanceof RestError && err.statusCode === 404;
const containerGone = (container: string) => (err: unknown) => {
  throw err instanceof RestError && (err.code === 'ContainerNotFound' || (err.statusCode === 404 && !err.code?.startsWith('Blob'))) ? new OutputUnavailableError(`The output container ${container} does not exist`) : err;
};

/**
 * Export files as block blobs in one Azure Blob Storage container (or Azurite). A file's blocks
 * are staged as it streams and committed in one Put Block List at the end, so the blob is whole
 * or absent (and a blob written again keeps its old content until the new one commits). Blocks
 * a killed writer staged and never committed are discarded by the service after seven days;
 * nothing else is left behind. There is no rename: `move` copies (server side), then deletes.
 * Signed URLs are SAS: a service SAS when bulkflow holds the account key, a user delegation SAS
 * when it signs in with an identity (Microsoft Entra ID).
 */
export class AzureOutputStore implements OutputStore {
  private readonly container: ContainerClient;
  private delegation?: UserDelegationKey;

  constructor(
    private readonly service: BlobServiceClient,
    private readonly containerName: string,
    private readonly prefix = '',
  ) {
    this.container = service.getContainerClient(containerName);
  }

  private blob(key: string) {
    assertSafeKey(key);
    return this.container.getBlockBlobClient(this.prefix + key);
  }

  createWriter(key: string) {
    const blob = this.blob(key);
    const stream = new PassThrough({ highWaterMark: 1024 * 1024 });
    const abort = new AbortController();
    // A writer destroyed by its activity stops staging; nothing is committed.
    stream.once('error', () => abort.abort());
    const done = blob
      .uploadStream(stream, BLOCK_BYTES, BLOCKS_IN_FLIGHT, {
        abortSignal: abort.signal,
        // SAS URLs fetch the blob straight from the service: its properties are the only place to say no-store.
        blobHTTPHeaders: { blobContentType: 'application/fhir+ndjson', blobCacheControl: 'no-store' },
      })
      .then(
        () => undefined,
        (err: unknown) => {
          // A failed upload stops reading the stream: fail the writer too, or it would wait on a full buffer forever.
          stream.destroy(err as Error);
          return containerGone(this.containerName)(err);
        },
      );
    return { stream, done };
  }

  async openReader(key: string): Promise<Readable | undefined> {
    try {
      return (await this.blob(key).download()).readableStreamBody as Readable;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async openFrom(key: string, start: number) {
    const blob = this.blob(key);
    let size: number;
    try {
      size = (await blob.getProperties()).contentLength ?? 0;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    if (start >= size) return { stream: Readable.from([]), size };
    return { stream: (await blob.download(start)).readableStreamBody as Readable, size };
  }

  async move(from: string, to: string): Promise<void> {
    const [source, target] = [this.blob(from), this.blob(to)];
    if (!(await source.exists())) {
      // Retried after the delete: the source is gone and the target is there.
      if (await target.exists()) return;
      throw new Error(`no file ${from} to move`);
    }
    // The source is read through a short SAS of its own: that authorizes the copy whether bulkflow signs in with a key or an identity.
    const poller = await target.beginCopyFromURL(await this.sasUrl(source.name, 600));
    await poller.pollUntilDone();
    await source.deleteIfExists();
  }

  async list(prefix: string): Promise<string[]> {
    assertSafeKey(prefix);
    const keys: string[] = [];
    try {
      for await (const blob of this.container.listBlobsFlat({ prefix: this.prefix + prefix })) keys.push(blob.name.slice(this.prefix.length));
    } catch (err) {
      containerGone(this.containerName)(err);
    }
    return keys.sort();
  }

  async deletePrefix(prefix: string): Promise<number> {
    const keys = await this.list(prefix);
    for (let i = 0; i < keys.length; i += 16) await Promise.all(keys.slice(i, i + 16).map((key) => this.blob(key).deleteIfExists()));
    return keys.length;
  }

  /** A read-only SAS URL for exactly this blob, valid for `ttlSeconds`, signed locally (a user delegation key is fetched once a day). */
  async signedUrl(key: string, ttlSeconds: number): Promise<string> {
    return this.sasUrl(this.blob(key).name, ttlSeconds);
  }

  private async sasUrl(blobName: string, ttlSeconds: number): Promise<string> {
    const now = Date.now();
    const values = {
      containerName: this.containerName,
      blobName,
      permissions: BlobSASPermissions.parse('r'),
      startsOn: new Date(now - CLOCK_SKEW_MS),
      expiresOn: new Date(now + ttlSeconds * 1000),
      protocol: this.service.url.startsWith('https:') ? SASProtocol.Https : SASProtocol.HttpsAndHttp,
    };
    const credential = this.service.credential;
    if (credential instanceof StorageSharedKeyCredential) return this.withSas(blobName, generateBlobSASQueryParameters(values, credential).toString());
    const key = await this.delegationKey(values.expiresOn.getTime());
    // A user delegation SAS ends when its key does (at most seven days from the key's start).
    const expiresOn = new Date(Math.min(values.expiresOn.getTime(), key.signedExpiresOn.getTime()));
    return this.withSas(blobName, generateBlobSASQueryParameters({ ...values, expiresOn }, key, this.service.accountName).toString());
  }

  private withSas(blobName: string, sas: string): string {
    return `${this.container.getBlobClient(blobName).url}?${sas}`;
  }

  /** A user delegation key valid until `until` (or as long as a key can be), fetched again only when the one held ends sooner. */
  private async delegationKey(until: number): Promise<UserDelegationKey> {
    const now = Date.now();
    const needed = Math.min(until, now + MAX_DELEGATION_MS - DELEGATION_KEY_MS);
    if (!this.delegation || this.delegation.signedExpiresOn.getTime() < needed) {
      const expires = Math.min(now + MAX_DELEGATION_MS, Math.max(until, now) + DELEGATION_KEY_MS);
      this.delegation = await this.service.getUserDelegationKey(new Date(now - CLOCK_SKEW_MS), new Date(expires));
    }
    return this.delegation;
  }
}
