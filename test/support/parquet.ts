/**
 * Parquet files read back with an independent reader: parquet-wasm (the Rust `parquet` crate)
 * into Apache Arrow, not the library that wrote them. Values as plain JSON: 64-bit integers as
 * numbers, timestamps as ISO strings, dates as `YYYY-MM-DD`.
 */
import { tableFromIPC } from 'apache-arrow';
import { readParquet } from 'parquet-wasm';

export function readParquetRows(bytes: Uint8Array): { columns: { name: string; type: string }[]; rows: Record<string, unknown>[] } {
  const table = tableFromIPC(readParquet(bytes).intoIPCStream());
  const columns = table.schema.fields.map((f) => ({ name: f.name, type: String(f.type) }));
  const rows = table.toArray().map((row: { toJSON(): Record<string, unknown> }) => {
    const plain: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(row.toJSON())) {
      const type = columns.find((c) => c.name === name)!.type;
      if (value === null || value === undefined) plain[name] = null;
      else if (typeof value === 'bigint') plain[name] = Number(value);
      else if (type.startsWith('Timestamp')) plain[name] = new Date(Number(value)).toISOString();
      else if (type.startsWith('Date')) plain[name] = new Date(Number(value)).toISOString().slice(0, 10);
      else plain[name] = value;
    }
    return plain;
  });
  return { columns, rows };
}
