/**
 * View rows as one Parquet file written to a stream, with hyparquet-writer (chosen by measuring:
 * see the README's SQL on FHIR section): rows are buffered per row group (at most 8,192 rows or
 * about 2 MiB of values), each row group is encoded and handed to the stream (waiting while it
 * is saturated), so memory holds one row group whatever the file's size.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { parquetColumns, type ParquetColumn } from './parquet-columns';
import type { ViewRow } from './run-view';
import type { ViewColumn } from './view-definition';

const ROW_GROUP_ROWS = 8192;
const ROW_GROUP_BYTES = 2 * 1024 * 1024;

/** hyparquet-writer's buffer, handed to a Node stream after each row group (offsets keep counting the whole file). */
class StreamingByteWriter extends ByteWriter {
  constructor(private readonly stream: Writable) {
    super(1 << 20);
  }

  flush(): Promise<void> | undefined {
    if (this.index === 0) return undefined;
    const chunk = Buffer.from(this.buffer.slice(0, this.index));
    this.index = 0;
    return this.stream.write(chunk) ? undefined : once(this.stream, 'drain').then(() => undefined);
  }

  override finish(): void {
    void this.flush(); // the stream's end() then waits for everything written
  }
}

export class ParquetRowWriter {
  private readonly columns: ParquetColumn[];
  private readonly bytesOut: StreamingByteWriter;
  private readonly parquet: ParquetWriter;
  private group: unknown[][] = [];
  private groupBytes = 0;
  rows = 0;

  constructor(stream: Writable, columns: ViewColumn[]) {
    this.columns = parquetColumns(columns);
    this.bytesOut = new StreamingByteWriter(stream);
    this.parquet = new ParquetWriter({ writer: this.bytesOut, schema: [{ name: 'root', num_children: this.columns.length }, ...this.columns.map((c) => c.element)], createdBy: 'bulkflow' });
  }

  /** Bytes written so far and about the size of the row group waiting. */
  get bytes(): number {
    return this.bytesOut.offset + this.groupBytes;
  }

  /** A promise only when a row group was written. */
  add(rows: ViewRow[]): void | Promise<void> {
    for (const row of rows) {
      const values = this.columns.map((c, i) => c.convert(row[i]));
      this.group.push(values);
      for (const v of values) this.groupBytes += typeof v === 'string' ? v.length : 8;
    }
    this.rows += rows.length;
    if (this.group.length >= ROW_GROUP_ROWS || this.groupBytes >= ROW_GROUP_BYTES) return this.writeGroup();
  }

  private async writeGroup(): Promise<void> {
    if (this.group.length === 0) return;
    const rows = this.group;
    this.group = [];
    this.groupBytes = 0;
    await this.parquet.write({ columnData: this.columns.map((c, i) => ({ name: c.element.name, data: rows.map((r) => r[i]) })), rowGroupSize: rows.length });
  }

  /** The last row group and the footer; the caller ends the stream. Returns the file's size. */
  async finish(): Promise<number> {
    await this.writeGroup();
    await this.parquet.finish();
    return this.bytesOut.offset;
  }
}
