import type { PartLimits } from '../src/contracts/export-window';
import type { OutputStore } from '../src/output/output-store';
import { roomIn } from '../src/streams/room-in';
import type { PartFile } from '../src/contracts/bulk-export';

const NEWLINE = Buffer.from('\n');
/** Lines are handed to the output stream in pieces of about this size: a write per COPY chunk (~10 KB) cost more CPU than the export's own work. */
const WRITE_BYTES = 1 << 20;

/**
 * Writes NDJSON lines into numbered part files, one open at a time. Lines are buffered per
 * received chunk and handed to the output stream together, honouring backpressure.
 */
export class PartWriter {
  private writer: ReturnType<OutputStore['createWriter']> | undefined;
  private part: PartFile | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly output: OutputStore,
    /** The key of part number n (deterministic, so a retry overwrites rather than duplicates). */
    private readonly keyOf: (part: number) => string,
    private readonly fileType: string,
    private readonly limits: PartLimits,
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

  /** Resources and bytes the open part (or the next one) takes before it is full. */
  get room(): { resources: number; bytes: number } {
    return { resources: this.limits.maxPartResources - (this.part?.count ?? 0), bytes: this.limits.maxPartBytes - (this.part?.bytes ?? 0) };
  }

  /** Whether `bytes` more would take the open part, which holds something already, over its size: they start the next part (so a resource larger than a part is alone in its own). */
  crowds(bytes: number): boolean {
    return this.part !== undefined && this.part.bytes > 0 && this.part.bytes + bytes > this.limits.maxPartBytes;
  }

  /** Adds a line to the open part (opening the next one if none is); `counted` false for block headers. */
  add(line: Buffer, counted = true): void {
    const part = this.open();
    this.pending.push(line, NEWLINE);
    this.pendingBytes += line.length + 1;
    if (counted) part.count++;
    part.bytes += line.length + 1;
  }

  /** Adds `lines` whole lines (newlines included) at once. */
  addLines(block: Buffer, lines: number): void {
    const part = this.open();
    this.pending.push(block);
    this.pendingBytes += block.length;
    part.count += lines;
    part.bytes += block.length;
  }

  private open(): PartFile {
    if (!this.writer) {
      const key = this.keyOf(this.parts.length);
      this.writer = this.output.createWriter(key);
      this.writer.done.catch(() => undefined); // awaited in finish
      this.part = { type: this.fileType, key, count: 0, bytes: 0 };
    }
    return this.part!;
  }

  /** Hands buffered lines to the output stream once there are enough of them (or `all`), waiting while it is saturated. */
  async flush(all = false): Promise<void> {
    if (this.pending.length === 0 || !this.writer || (!all && this.pendingBytes < WRITE_BYTES)) return;
    // One pending buffer (a large resource's line, or a block of lines) goes out as it is, uncopied.
    const chunk = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.writer.stream.write(chunk)) await roomIn(this.writer.stream);
  }

  /** Completes the open part and records it. */
  async finish(extra: Partial<PartFile> = {}): Promise<void> {
    await this.flush(true);
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

