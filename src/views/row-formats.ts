/**
 * View rows as bytes: JSON (one array), NDJSON (one object a line) and CSV (RFC 4180: fields
 * with a comma, quote or line break quoted, quotes doubled; CRLF line ends; an optional header
 * row; collections and complex values as JSON text, null as an empty field). Each format is a
 * start, a per-row encoder and an end, so rows stream. Pure.
 */
import type { RowFormat } from './run-request';
import type { ViewColumn } from './view-definition';
import type { ViewRow } from './run-view';

export interface RowEncoder {
  contentType: string;
  start: string;
  row(row: ViewRow, index: number): string;
  end: string;
}

const csvField = (value: unknown): string => {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

export const csvLine = (values: unknown[]) => `${values.map(csvField).join(',')}\r\n`;

const objectOf = (columns: ViewColumn[], row: ViewRow) => {
  const object: Record<string, unknown> = {};
  columns.forEach((c, i) => (object[c.name] = row[i] ?? null));
  return object;
};

export function rowEncoder(format: RowFormat, columns: ViewColumn[], options: { header: boolean }): RowEncoder {
  switch (format) {
    case 'json':
      return { contentType: 'application/json', start: '[', row: (row, i) => `${i > 0 ? ',' : ''}${JSON.stringify(objectOf(columns, row))}`, end: ']' };
    case 'ndjson':
      return { contentType: 'application/x-ndjson', start: '', row: (row) => `${JSON.stringify(objectOf(columns, row))}\n`, end: '' };
    case 'csv':
      return { contentType: 'text/csv; charset=utf-8', start: options.header ? csvLine(columns.map((c) => c.name)) : '', row: (row) => csvLine(row), end: '' };
  }
}
