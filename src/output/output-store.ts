import type { Readable, Writable } from 'node:stream';

/**
 * Where export files go. Keys are `<exportId>/<file name>`; writing a key again replaces it,
 * which is what makes a retried partition overwrite instead of duplicate.
 */
export interface OutputStore {
  /** A stream for one file; the file exists (complete) once `done` resolves, never half-written. */
  createWriter(key: string): { stream: Writable; done: Promise<void> };
  /** The file's bytes, or undefined when there is no such file. */
  openReader(key: string): Promise<Readable | undefined>;
  /** Deletes every file under `prefix` (e.g. `<exportId>/`); returns how many. */
  deletePrefix(prefix: string): Promise<number>;
  /** The keys under `prefix`, for tests and cleanup checks. */
  list(prefix: string): Promise<string[]>;
}

/** File keys are made by bulkflow; anything else is refused before it reaches a path or a bucket. */
export function assertSafeKey(key: string): void {
  if (!/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_.-]+)*\/?$/.test(key) || key.split('/').some((s) => s === '.' || s === '..')) {
    throw new Error(`unsafe output key: ${JSON.stringify(key)}`);
  }
}
