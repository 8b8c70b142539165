import type { ResourceStore, WriteOperation, WriteResult } from './resource-store';

interface InFlight {
  done: Promise<void>;
  keys: Set<string>;
}

const keyOf = (operation: WriteOperation) =>
  operation.op === 'put'
    ? `${operation.resource.resourceType}/${operation.resource.id ?? ''}`
    : operation.op === 'put-prepared'
      ? `${operation.prepared.resourceType}/${operation.prepared.id}`
      : `${operation.resourceType}/${operation.id}`;

/**
 * Batches write operations for bulk loads and keeps up to `concurrency` batches in flight
 * while the caller prepares the next, so parsing and the database work in parallel. A batch
 * that touches a resource of a batch still in flight waits for it, so every resource's versions
 * are written in input order. A failed batch fails the next `add` or `finish`.
 */
export class PipelinedWriter {
  private batch: WriteOperation[] = [];
  private readonly inFlight = new Set<InFlight>();
  private failure: unknown;

  constructor(
    private readonly store: ResourceStore,
    private readonly onWritten: (results: WriteResult[]) => void,
    private readonly batchSize = 1000,
    private readonly concurrency = 2,
  ) {}

  async add(operation: WriteOperation): Promise<void> {
    this.batch.push(operation);
    if (this.batch.length >= this.batchSize) await this.flush();
  }

  /** Writes what is left and waits for every batch. */
  async finish(): Promise<void> {
    await this.flush();
    await Promise.all([...this.inFlight].map((b) => b.done));
    this.throwIfFailed();
  }

  private async flush(): Promise<void> {
    if (this.batch.length === 0) return this.throwIfFailed();
    const writing = this.batch;
    this.batch = [];
    const keys = new Set(writing.map(keyOf));
    const overlapping = [...this.inFlight].filter((b) => [...keys].some((k) => b.keys.has(k)));
    await Promise.all(overlapping.map((b) => b.done));
    while (this.inFlight.size >= this.concurrency) await Promise.race([...this.inFlight].map((b) => b.done));
    this.throwIfFailed();
    const entry: InFlight = { keys, done: Promise.resolve() };
    entry.done = this.store
      .write(writing)
      .then(this.onWritten, (err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => this.inFlight.delete(entry));
    this.inFlight.add(entry);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
