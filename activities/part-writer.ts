import { once } from 'node:events';
import type { OutputStore } from '../src/output/output-store';
import type { PartFile } from '../workflows/types';

const NEWLINE = Buffer.from('\n');

/**
 * Writes NDJSON lines into numbered part files, one open at a time. Lines are buffered per
 * received chunk and handed to the output stream together, honouring backpressure.
 */
export class PartWriter {
  private writer: ReturnType<OutputStore['createWriter']> | undefined;
  private part: PartFile | undefined;
  private pending: Buffer[] = [];

  constructor(
    private readonly output: OutputStore,
    /** The key of part number n (deterministic, so a retry overwrites rather than duplicates). */
    private readonly keyOf: (part: number) => string,
    private readonly fileType: string,
    private readonly limits: { maxPartResources: number; maxPartBytes: number },
    /** Parts finished so far (also those of an earlier attempt); finished parts are appended. */
    private readonly parts: PartFile[],
  ) {}

  get isOpen(): boolean {
    return this.writer !== undefined;
  }

  /** The open part reached its resource count or size limit. */
  get isFull(): boolean {
    return this.part !== undefined && (this.part.count >= this.limits.maxPartResources || this.part.bytes >= this.limits.maxPartBytes);
  }

  /** Adds a line to the open part (opening the next one if none is); `counted` false for block headers. */
  add(line: Buffer, counted = true): void {
    if (!this.writer) {
      const key = this.keyOf(this.parts.length);
      this.writer = this.output.createWriter(key);
      this.writer.done.catch(() => undefined); // awaited in finish
      this.part = { type: this.fileType, key, count: 0, bytes: 0 };
    }
    this.pending.push(line, NEWLINE);
    if (counted) this.part!.count++;
    this.part!.bytes += line.length + 1;
  }

  /** Hands buffered lines to the output stream, waiting while it is saturated. */
  async flush(): Promise<void> {
    if (this.pending.length === 0 || !this.writer) return;
    const chunk = Buffer.concat(this.pending);
    this.pending = [];
    if (!this.writer.stream.write(chunk)) await once(this.writer.stream, 'drain');
  }

  /** Completes the open part and records it. */
  async finish(extra: Partial<PartFile> = {}): Promise<void> {
    await this.flush();
    this.writer!.stream.end();
    await this.writer!.done;
    this.parts.push({ ...this.part!, ...extra });
    this.writer = undefined;
    this.part = undefined;
  }

  destroy(): void {
    this.writer?.stream.destroy();
  }
}
