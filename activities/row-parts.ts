/**
 * View rows into numbered part files, one open at a time, each a whole file of its format:
 * text formats (NDJSON lines; CSV with its header row; JSON one array) through PartWriter, and
 * Parquet through ParquetRowWriter, streaming one row group at a time. Parts end only between
 * resources (the caller asks `isFull` after each), so a retry resumes at a resource boundary.
 */
import type { PartFile } from '../src/contracts/bulk-export';
import type { PartLimits } from '../src/contracts/export-window';
import type { ViewFormat } from '../src/contracts/view-export';
import type { OutputStore } from '../src/output/output-store';
import { ParquetRowWriter } from '../src/views/parquet-writer';
import { rowEncoder } from '../src/views/row-formats';
import type { ViewRow } from '../src/views/run-view';
import type { ViewColumn } from '../src/views/view-definition';
import { PartWriter } from './part-writer';

export interface RowParts {
  readonly isOpen: boolean;
  /** The open part reached its row count or size limit. */
  readonly isFull: boolean;
  /** One resource's rows (never split across parts); a promise only when it had to write (no promise per row: they cost). */
  add(rows: ViewRow[]): void | Promise<void>;
  /** Hands buffered bytes on, waiting while the output is saturated. */
  flush(): Promise<void>;
  finish(): Promise<void>;
  destroy(): void;
}

export interface RowPartsOptions {
  output: OutputStore;
  keyOf: (part: number) => string;
  fileType: string;
  limits: PartLimits;
  /** Finished parts (also an earlier attempt's); finished parts are appended. */
  parts: PartFile[];
  columns: ViewColumn[];
  format: ViewFormat;
  header: boolean;
}

export function rowParts(options: RowPartsOptions): RowParts {
  return options.format === 'parquet' ? new ParquetParts(options) : new TextParts(options);
}

/**
 * Encoded rows are written straight into a chunk of this many bytes. Concatenating rows into one
 * long string cost three times as much: its pieces lived until the chunk was flushed, so they
 * survived collections and were copied into the old generation. What is written is handed to the
 * part after each received batch (a few KB) and the next rows go on in the same chunk, after it:
 * a fresh chunk per batch allocated 2 GB of buffers in a million-row export, and that external
 * memory alone forced a full collection every 0.2 s.
 */
const TEXT_CHUNK_BYTES = 256 * 1024;

class TextParts implements RowParts {
  private readonly parts: PartWriter;
  private readonly encoder;
  private rowsInPart = 0;
  /** Encoded rows not yet handed to the part, chunk[handedOver, written) (their count and bytes count toward the limits). */
  private chunk = Buffer.allocUnsafe(TEXT_CHUNK_BYTES);
  private handedOver = 0;
  private written = 0;
  private chunkRows = 0;
  private started = false;

  constructor(options: RowPartsOptions) {
    this.parts = new PartWriter(options.output, options.keyOf, options.fileType, options.limits, options.parts);
    this.encoder = rowEncoder(options.format as Exclude<ViewFormat, 'parquet'>, options.columns, { header: options.header });
  }

  get isOpen() {
    return this.started;
  }

  get isFull() {
    const room = this.parts.room;
    return this.started && (this.chunkRows >= room.resources || this.written - this.handedOver >= room.bytes);
  }

  add(rows: ViewRow[]): void {
    if (rows.length === 0) return;
    if (!this.started) {
      this.write(this.encoder.start, 0);
      this.started = true;
    }
    for (const row of rows) this.write(this.encoder.row(row, this.rowsInPart++), 1);
  }

  /** Text into the chunk (a UTF-8 character takes at most three bytes per UTF-16 unit). */
  private write(text: string, rows: number): void {
    if (this.written + text.length * 3 > this.chunk.length) {
      this.handOver();
      if (text.length * 3 > this.chunk.length) {
        // A row larger than a chunk goes on its own.
        this.parts.addLines(Buffer.from(text), rows);
        return;
      }
      // The part keeps what was handed over: the next rows go into a new chunk.
      this.chunk = Buffer.allocUnsafe(TEXT_CHUNK_BYTES);
      this.handedOver = 0;
      this.written = 0;
    }
    this.written += this.chunk.write(text, this.written);
    this.chunkRows += rows;
  }

  /** What is written into the open part (a view: those bytes of the chunk are never written again). */
  private handOver(): void {
    if (this.written === this.handedOver) return;
    this.parts.addLines(this.chunk.subarray(this.handedOver, this.written), this.chunkRows);
    this.handedOver = this.written;
    this.chunkRows = 0;
  }

  flush() {
    this.handOver();
    return this.parts.flush();
  }

  async finish(): Promise<void> {
    this.write(this.encoder.end, 0);
    this.handOver();
    await this.parts.finish();
    this.rowsInPart = 0;
    this.started = false;
  }

  destroy() {
    this.parts.destroy();
  }
}

class ParquetParts implements RowParts {
  private open: { writer: ReturnType<OutputStore['createWriter']>; parquet: ParquetRowWriter; part: PartFile } | undefined;

  constructor(private readonly options: RowPartsOptions) {}

  get isOpen() {
    return this.open !== undefined;
  }

  get isFull() {
    return this.open !== undefined && (this.open.parquet.rows >= this.options.limits.maxPartResources || this.open.parquet.bytes >= this.options.limits.maxPartBytes);
  }

  add(rows: ViewRow[]): void | Promise<void> {
    if (rows.length === 0) return;
    if (!this.open) {
      const key = this.options.keyOf(this.options.parts.length);
      const writer = this.options.output.createWriter(key);
      writer.done.catch(() => undefined); // awaited in finish
      this.open = { writer, parquet: new ParquetRowWriter(writer.stream, this.options.columns), part: { type: this.options.fileType, key, count: 0, bytes: 0 } };
    }
    return this.open.parquet.add(rows);
  }

  async flush(): Promise<void> {
    // Row groups go out when full; until then their rows wait in memory (bounded by ParquetRowWriter).
  }

  async finish(): Promise<void> {
    const open = this.open!;
    const bytes = await open.parquet.finish();
    open.writer.stream.end();
    await open.writer.done;
    this.options.parts.push({ ...open.part, count: open.parquet.rows, bytes });
    this.open = undefined;
  }

  destroy() {
    this.open?.writer.stream.destroy();
  }
}
