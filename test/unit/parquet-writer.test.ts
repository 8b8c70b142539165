import { once } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { ParquetRowWriter } from '../../src/views/parquet-writer';
import type { ViewColumn } from '../../src/views/view-definition';
import { readParquetRows } from '../support/parquet';

const column = (name: string, extra: Partial<ViewColumn> = {}): ViewColumn => ({ name, path: name, collection: false, tags: [], ...extra });

/** Writes `rows` through a ParquetRowWriter, a resource's rows at a time, and returns the file's bytes. */
async function written(columns: ViewColumn[], rows: unknown[][]): Promise<Buffer> {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  const writer = new ParquetRowWriter(stream, columns);
  for (let i = 0; i < rows.length; i += 3) {
    const pending = writer.add(rows.slice(i, i + 3));
    if (pending) await pending;
  }
  const size = await writer.finish();
  stream.end();
  const bytes = Buffer.concat(chunks);
  expect(size).toBe(bytes.length);
  return bytes;
}

describe('ParquetRowWriter', () => {
  it('writes every kind of column over several row groups, nulls and non-ASCII text included, as an independent reader reads them', async () => {
    const columns = [
      column('id'),
      column('count', { type: 'integer' }),
      column('value', { type: 'decimal' }),
      column('born', { tags: [{ name: 'ansi/type', value: 'DATE' }] }),
      column('active', { type: 'boolean' }),
      column('big', { type: 'integer64' }),
      column('names', { collection: true }),
    ];
    // 20,000 rows: five row groups of at most 4,096, the last one partial.
    const rows = Array.from({ length: 20_000 }, (_, i) => [
      i % 7 === 0 ? null : `id-${i}-${i % 5 === 0 ? 'Zoë 日本 🩺' : 'plain'}`,
      i % 11 === 0 ? null : i - 10_000,
      i % 13 === 0 ? null : i / 8,
      i % 17 === 0 ? null : `19${String(70 + (i % 30))}-0${1 + (i % 9)}-1${i % 10}`,
      i % 19 === 0 ? null : i % 2 === 0,
      i % 23 === 0 ? null : String(2 ** 40 + i),
      i % 29 === 0 ? null : [`a${i}`, 'b'],
    ]);
    const { rows: read } = readParquetRows(await written(columns, rows));
    expect(read.length).toBe(rows.length);
    read.forEach((row, i) => {
      const [id, count, value, born, active, big, names] = rows[i];
      expect(row).toEqual({ id, count, value, born, active, big: big === null ? null : Number(big), names: names === null ? null : JSON.stringify(names) });
    });
  });

  it('leaves no wait behind when the footer meets backpressure: the stream then ends without an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record);
    try {
      // A slow sink (a file, a GCS upload): every write of a row group or the footer says "wait" for a while.
      const chunks: Buffer[] = [];
      const stream = new Writable({
        highWaterMark: 64,
        write(chunk: Buffer, _encoding, done) {
          chunks.push(chunk);
          setTimeout(done, 5);
        },
      });
      const writer = new ParquetRowWriter(stream, [column('id'), column('n', { type: 'integer' })]);
      for (let i = 0; i < 3000; i++) {
        const pending = writer.add([[`id-${i}`, i]]);
        if (pending) await pending;
      }
      await writer.finish();
      stream.end();
      await once(stream, 'close');
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
      expect(readParquetRows(Buffer.concat(chunks)).rows.length).toBe(3000);
    } finally {
      process.off('unhandledRejection', record);
    }
  });

  it('writes a file of no rows with the columns alone', async () => {
    const { columns, rows } = readParquetRows(await written([column('id'), column('n', { type: 'integer' })], []));
    expect(columns.map((c) => c.name)).toEqual(['id', 'n']);
    expect(rows).toEqual([]);
  });
});
