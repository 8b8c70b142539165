/**
 * View rows as one Parquet file written to a stream, with hyparquet-writer (chosen by measuring:
 * see docs/sql-on-fhir.md): rows are buffered per row group (at most 4,096 rows or
 * about 2 MiB of values), each row group is encoded and handed to the stream (waiting while it
 * is saturated), so memory holds one row group whatever the file's size. The waiting row group
 * is kept column by column in reused buffers (text as UTF-8 bytes, numbers in a Float64Array),
 * not as JS values: values held across many young-generation collections are promoted, and
 * promoted garbage grew the heap by about 100 MB before the old generation was collected.
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { roomIn } from '../streams/room-in';
import { parquetColumns, type ParquetColumn } from './parquet-columns';
import type { ViewRow } from './run-view';
import type { ViewColumn } from './view-definition';

/**
 * Encoding a row group builds its pages at once, and what lives through the collections during
 * it is promoted: at 8,192 rows the view export's peak RSS was 80-90 MB higher than at 4,096, for
 * the same time and much the same file size.
 */
const ROW_GROUP_ROWS = 4096;
const ROW_GROUP_BYTES = 2 * 1024 * 1024;

/** hyparquet-writer's buffer, handed to a Node stream after each row group (offsets keep counting the whole file). */
/** One column's values of the waiting row group, in reused buffers; `values()` gives them to the writer as JS values. */
interface ColumnValues {
  readonly bytes: number;
  push(value: unknown): void;
  values(): unknown[];
  clear(): void;
}

/** Strings as UTF-8 in one growing buffer; a null is a start of -1. */
class TextValues implements ColumnValues {
  private text = Buffer.allocUnsafe(64 * 1024);
  private starts = new Int32Array(1024);
  private ends = new Int32Array(1024);
  private count = 0;
  bytes = 0;

  push(value: unknown): void {
    if (this.count === this.starts.length) {
      this.starts = grown(this.starts);
      this.ends = grown(this.ends);
    }
    if (value === null) {
      this.starts[this.count++] = -1;
      return;
    }
    const text = value as string;
    if (this.bytes + text.length * 3 > this.text.length) {
      const larger = Buffer.allocUnsafe(Math.max(this.text.length * 2, this.bytes + text.length * 3));
      this.text.copy(larger, 0, 0, this.bytes);
      this.text = larger;
    }
    this.starts[this.count] = this.bytes;
    this.bytes += this.text.write(text, this.bytes);
    this.ends[this.count++] = this.bytes;
  }

  values(): unknown[] {
    const out: unknown[] = new Array(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.starts[i] < 0 ? null : this.text.toString('utf8', this.starts[i], this.ends[i]);
    return out;
  }

  clear(): void {
    this.count = 0;
    this.bytes = 0;
  }
}

/** Numbers (INT32, DOUBLE, DATE) in a Float64Array; nulls flagged beside them. */
class NumberValues implements ColumnValues {
  private numbers = new Float64Array(1024);
  private nulls = new Uint8Array(1024);
  private count = 0;

  get bytes() {
    return this.count * 8;
  }

  push(value: unknown): void {
    if (this.count === this.numbers.length) {
      this.numbers = grown(this.numbers);
      this.nulls = grown(this.nulls);
    }
    this.nulls[this.count] = value === null ? 1 : 0;
    this.numbers[this.count++] = value === null ? 0 : (value as number);
  }

  values(): unknown[] {
    const out: unknown[] = new Array(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.nulls[i] ? null : this.numbers[i];
    return out;
  }

  clear(): void {
    this.count = 0;
  }
}

/** Anything else (booleans, BigInts, Dates, JSON values): rarer, kept as they are. */
class AnyValues implements ColumnValues {
  private list: unknown[] = [];
  bytes = 0;

  push(value: unknown): void {
    this.list.push(value);
    this.bytes += 8;
  }

  values(): unknown[] {
    return this.list;
  }

  clear(): void {
    this.list = [];
    this.bytes = 0;
  }
}

function grown<T extends Int32Array | Float64Array | Uint8Array>(array: T): T {
  const larger = new (array.constructor as new (length: number) => T)(array.length * 2);
  larger.set(array);
  return larger;
}

function columnValues(column: ParquetColumn): ColumnValues {
  const { type, converted_type } = column.element;
  if (type === 'BYTE_ARRAY' && converted_type === 'UTF8') return new TextValues();
  if (type === 'DOUBLE' || (type === 'INT32' && (converted_type === undefined || converted_type === 'DATE'))) return new NumberValues();
  return new AnyValues();
}

const CREATED_BY = 'bulkflow';
/** Compact Thrift, each field header a delta from the last: `num_rows` (field 3, i64) 0, `row_groups` (field 4, list) of 0 elements of type 0, `created_by` (field 6). */
const EMPTY_ROW_GROUPS_AS_WRITTEN = Buffer.concat([Buffer.from([0x16, 0x00, 0x19, 0x00, 0x28, CREATED_BY.length]), Buffer.from(CREATED_BY)]);

class StreamingByteWriter extends ByteWriter {
  constructor(private readonly stream: Writable) {
    super(1 << 20);
  }

  /** After a row group: what is buffered goes to the stream, and the writer waits while the stream is saturated. */
  flush(): Promise<void> | undefined {
    return this.handOver() ? undefined : roomIn(this.stream);
  }

  /** The buffered bytes to the stream; false when it asks to wait. */
  private handOver(): boolean {
    if (this.index === 0) return true;
    const chunk = Buffer.from(this.buffer.slice(0, this.index));
    this.index = 0;
    return this.stream.write(chunk);
  }

  /** Set before the footer is written: the file has no row group. */
  noRows = false;

  override finish(): void {
    if (this.noRows) this.repairEmptyRowGroups();
    // No wait here: nobody would await it, and once the caller ends the stream it never drains, so
    // the wait rejected at its close as an unhandled rejection, which ends the worker process.
    // The stream's end() waits for everything written.
    this.handOver();
  }

  /**
   * hyparquet-writer 0.17.0 writes an empty Thrift list with element type 0, so the footer of a
   * file with no row groups says `row_groups: list<0>` and strict readers (Arrow's) refuse the
   * file. With no rows the whole file is still in the buffer: the list header after `num_rows: 0`
   * and before `created_by` is set to an empty list of structs (0x0C).
   */
  private repairEmptyRowGroups(): void {
    const tail = Buffer.from(this.buffer, 0, this.index);
    const at = tail.indexOf(EMPTY_ROW_GROUPS_AS_WRITTEN);
    if (at >= 0) tail[at + 3] = 0x0c;
  }
}

export class ParquetRowWriter {
  private readonly columns: ParquetColumn[];
  private readonly bytesOut: StreamingByteWriter;
  private readonly parquet: ParquetWriter;
  /** The waiting row group, column by column. */
  private readonly group: ColumnValues[];
  private groupRows = 0;
  rows = 0;

  constructor(stream: Writable, columns: ViewColumn[]) {
    this.columns = parquetColumns(columns);
    this.group = this.columns.map(columnValues);
    this.bytesOut = new StreamingByteWriter(stream);
    this.parquet = new ParquetWriter({ writer: this.bytesOut, schema: [{ name: 'root', num_children: this.columns.length }, ...this.columns.map((c) => c.element)], createdBy: CREATED_BY });
  }

  /** Bytes written so far and about the size of the row group waiting. */
  get bytes(): number {
    return this.bytesOut.offset + this.groupBytes();
  }

  private groupBytes(): number {
    let bytes = 0;
    for (const column of this.group) bytes += column.bytes;
    return bytes;
  }

  /** A promise only when a row group was written. */
  add(rows: ViewRow[]): void | Promise<void> {
    const columns = this.columns;
    for (const row of rows) {
      for (let i = 0; i < columns.length; i++) this.group[i].push(columns[i].convert(row[i]));
    }
    this.rows += rows.length;
    this.groupRows += rows.length;
    if (this.groupRows >= ROW_GROUP_ROWS || this.groupBytes() >= ROW_GROUP_BYTES) return this.writeGroup();
  }

  private async writeGroup(): Promise<void> {
    if (this.groupRows === 0) return;
    const columnData = this.columns.map((c, i) => ({ name: c.element.name, data: this.group[i].values() }));
    const rowGroupSize = this.groupRows;
    for (const column of this.group) column.clear();
    this.groupRows = 0;
    await this.parquet.write({ columnData, rowGroupSize });
  }

  /** The last row group and the footer; the caller ends the stream. Returns the file's size. */
  async finish(): Promise<number> {
    await this.writeGroup();
    this.bytesOut.noRows = this.rows === 0;
    await this.parquet.finish();
    return this.bytesOut.offset;
  }
}

/**
 * Rows as one Parquet file, streamed: the columns are checked now (a column without a Parquet
 * type throws before anything is sent), the rows are written as they come, and an error while
 * writing ends the stream with it.
 */
export function parquetStream(columns: ViewColumn[], batches: AsyncIterable<ViewRow[]>): Readable {
  const out = new PassThrough();
  const writer = new ParquetRowWriter(out, columns);
  void (async () => {
    for await (const rows of batches) await writer.add(rows);
    await writer.finish();
    out.end();
  })().catch((err: unknown) => out.destroy(err as Error));
  return out;
}
