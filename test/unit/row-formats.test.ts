import { rowEncoder } from '../../src/views/row-formats';
import type { ViewColumn } from '../../src/views/view-definition';

const columns: ViewColumn[] = ['a', 'b', 'c'].map((name) => ({ name, path: name, collection: false, tags: [] }));

describe('row encoders', () => {
  it('writes NDJSON and JSON rows that parse back to the same values, whatever the strings hold', () => {
    const strings = ['plain', 'quote " and \\ backslash', 'line\nbreak\ttab\u0001', 'Zoë 日本 🩺', 'lone \ud800 surrogate', '\u2028\u2029', ''];
    const rows = strings.map((s, i) => [s, i % 2 === 0 ? i / 3 : null, i % 3 === 0 ? [s, { x: true }] : i === 1]);
    const ndjson = rowEncoder('ndjson', columns, { header: false });
    const lines = rows.map((row) => ndjson.row(row, 0));
    expect(lines.every((line) => line.endsWith('\n') && !line.slice(0, -1).includes('\n'))).toBe(true);
    expect(lines.map((line) => JSON.parse(line))).toEqual(rows.map(([a, b, c]) => ({ a, b, c })));
    const json = rowEncoder('json', columns, { header: false });
    const text = json.start + rows.map((row, i) => json.row(row, i)).join('') + json.end;
    expect(JSON.parse(text)).toEqual(rows.map(([a, b, c]) => ({ a, b, c })));
    // A lone surrogate is escaped, as JSON.stringify does, so the text is well-formed UTF-16.
    expect(lines[4]).toContain('\\ud800');
  });
});
