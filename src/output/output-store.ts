import type { Readable, Writable } from 'node:stream';

/**
 * Where export files go. Keys are laid out by file-keys.ts; writing a key again replaces it,
 * which is what makes a retried partition overwrite instead of duplicate.
 */
export interface OutputStore {
  /** A stream for one file; the file exists (complete) once `done` resolves, never half-written. */
  createWriter(key: string): { stream: Writable; done: Promise<void> };
  /** The file's bytes, or undefined when there is no such file. */
  openReader(key: string): Promise<Readable | undefined>;
  /** The file's bytes from `start` on, with the whole file's size (a download resumed with a range request); undefined when there is no such file. */
  openFrom(key: string, start: number): Promise<{ stream: Readable; size: number } | undefined>;
  /** Deletes every file under `prefix` (e.g. `<exportId>/`); returns how many. */
  deletePrefix(prefix: string): Promise<number>;
  /**
   * Gives a complete file a new key (a lake run's staged part into its table). Done again after
   * it happened (a retried activity), it finds `to` there and does nothing; neither there throws.
   */
  move(from: string, to: string): Promise<void>;
  /** The keys under `prefix`, for tests and cleanup checks. */
  list(prefix: string): Promise<string[]>;
  /** A URL that downloads the file without a token until it expires (GCS V4 signed URLs only). */
  signedUrl?(key: string, ttlSeconds: number): Promise<string>;
}

/** File keys are made by bulkflow; anything else is refused before it reaches a path or a bucket. */
/** The store refuses for good (its bucket is gone): no retry can write there. */
export class OutputUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutputUnavailableError';
  }
}

export function assertSafeKey(key: string): void {
  if (!/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_.=-]+)*\/?$/.test(key) || key.split('/').some((s) => s === '.' || s === '..')) {
    throw new Error(`unsafe output key: ${JSON.stringify(key)}`);
  }
}

/** A small file (an async request or response) as text, or undefined when it does not exist. */
export async function readText(output: OutputStore, key: string): Promise<string | undefined> {
  const stream = await output.openReader(key);
  if (!stream) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Writes a small file in one piece. */
export async function writeText(output: OutputStore, key: string, text: string): Promise<void> {
  const writer = output.createWriter(key);
  writer.stream.end(text);
  await writer.done;
}

// Where each file goes: file-keys.ts.
