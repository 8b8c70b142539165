import type { ResourceStore, WriteOperation, WriteResult } from './resource-store';

/**
 * Batches write operations for bulk loads and keeps one batch in flight while the caller
 * prepares the next, so parsing and the database work in parallel. A failed batch fails the
 * next `add` or `finish`.
 */
export class PipelinedWriter {
  private batch: WriteOperation[] = [];
  private inFlight: Promise<void> = Promise.resolve();
  private failure: unknown;

  constructor(
    private readonly store: ResourceStore,
    private readonly onWritten: (results: WriteResult[]) => void,
    private readonly batchSize = 1000,
  ) {}

  async add(operation: WriteOperation): Promise<void> {
    this.batch.push(operation);
    if (this.batch.length >= this.batchSize) await this.flush();
  }

  /** Writes what is left and waits for every batch. */
  async finish(): Promise<void> {
    await this.flush();
    await this.inFlight;
    this.throwIfFailed();
  }

  private async flush(): Promise<void> {
    await this.inFlight;
    this.throwIfFailed();
    if (this.batch.length === 0) return;
    const writing = this.batch;
    this.batch = [];
    this.inFlight = this.store.write(writing).then(this.onWritten, (err: unknown) => {
      this.failure = err;
    });
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
