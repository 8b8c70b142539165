import type { ResourceStore, WriteOperation, WriteResult } from './resource-store';

/**
 * Batches write operations for bulk loads and keeps batches in flight while the caller
 * prepares the next, so parsing and the database work in parallel. With `concurrency` 1 the
 * batches commit in order (an import may update one resource twice); more is for data whose
 * resources appear once (the generator). A failed batch fails the next `add` or `finish`.
 */
export class PipelinedWriter {
  private batch: WriteOperation[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;

  constructor(
    private readonly store: ResourceStore,
    private readonly onWritten: (results: WriteResult[]) => void,
    private readonly batchSize = 1000,
    private readonly concurrency = 1,
  ) {}

  async add(operation: WriteOperation): Promise<void> {
    this.batch.push(operation);
    if (this.batch.length >= this.batchSize) await this.flush();
  }

  /** Writes what is left and waits for every batch. */
  async finish(): Promise<void> {
    await this.flush();
    await Promise.all(this.inFlight);
    this.throwIfFailed();
  }

  private async flush(): Promise<void> {
    while (this.inFlight.size >= this.concurrency) await Promise.race(this.inFlight);
    this.throwIfFailed();
    if (this.batch.length === 0) return;
    const writing = this.batch;
    this.batch = [];
    const done: Promise<void> = this.store.write(writing).then(this.onWritten, (err: unknown) => {
      this.failure ??= err;
    }).finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
