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

/** What JSON.stringify may escape: a quote, a backslash, control characters and surrogates (lone ones are escaped). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A string as JSON text: most values (ids, codes, dates) need no escaping, and quoting them directly is much cheaper. */
const jsonString = (v: string): string => (NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`);

/** A row as a JSON object's text, keys in column order: the keys are quoted once, not per row. */
function jsonObject(columns: ViewColumn[]): (row: ViewRow) => string {
  const keys = columns.map((c, i) => `${i === 0 ? '{' : ','}${JSON.stringify(c.name)}:`);
  return (row) => {
    let text = '';
    for (let i = 0; i < keys.length; i++) {
      const v = row[i];
      text += keys[i] + (v === undefined || v === null ? 'null' : typeof v === 'string' ? jsonString(v) : typeof v === 'number' && Number.isFinite(v) ? String(v) : typeof v === 'boolean' ? String(v) : JSON.stringify(v));
    }
    return keys.length === 0 ? '{}' : `${text}}`;
  };
}

export function rowEncoder(format: Exclude<RowFormat, 'parquet' | 'fhir'>, columns: ViewColumn[], options: { header: boolean }): RowEncoder {
  const object = jsonObject(columns);
  switch (format) {
    case 'json':
      return { contentType: 'application/json', start: '[', row: (row, i) => `${i > 0 ? ',' : ''}${object(row)}`, end: ']' };
    case 'ndjson':
      return { contentType: 'application/x-ndjson', start: '', row: (row) => `${object(row)}\n`, end: '' };
    case 'csv':
      return { contentType: 'text/csv; charset=utf-8', start: options.header ? csvLine(columns.map((c) => c.name)) : '', row: (row) => csvLine(row), end: '' };
  }
}
