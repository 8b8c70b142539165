/** View rows into text part files: exact bytes whatever the row size or characters, parts rotated between resources. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PartFile } from '../../src/contracts/bulk-export';
import { LocalOutputStore } from '../../src/output/local-output-store';
import { rowEncoder } from '../../src/views/row-formats';
import type { ViewRow } from '../../src/views/run-view';
import type { ViewColumn } from '../../src/views/view-definition';
import { rowParts } from '../../activities/row-parts';

const columns: ViewColumn[] = [
  { name: 'id', path: 'id', collection: false, tags: [] },
  { name: 'text', path: 'text', collection: false, tags: [] },
];

describe('text row parts', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'row-parts-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes each resource's rows through rowParts, finishing a part when it is full; returns the parts. */
  const write = async (format: 'ndjson' | 'csv' | 'json', resources: ViewRow[][], limits = { maxPartResources: 1_000_000, maxPartBytes: 1 << 30 }) => {
    const parts: PartFile[] = [];
    const writer = rowParts({ output: new LocalOutputStore(dir), keyOf: (n) => `part-${n}`, fileType: 'v', limits, parts, columns, format, header: true });
    for (const rows of resources) {
      await writer.add(rows);
      if (writer.isFull) await writer.finish();
      await writer.flush();
    }
    if (writer.isOpen) await writer.finish();
    return parts.map((p) => ({ ...p, text: readFileSync(path.join(dir, p.key), 'utf8') }));
  };

  it('writes exactly what the encoder gives, with rows larger than a chunk and characters of every UTF-8 width among small ones', async () => {
    const huge = 'x'.repeat(200_000) + 'é'.repeat(50_000) + '😀'.repeat(20_000); // more than the chunk, in UTF-16 units times three
    const resources: ViewRow[][] = [];
    for (let i = 0; i < 3000; i++) resources.push([[`r${i}`, i % 500 === 7 ? huge : `ü€😀 ${i} "quoted", line\nbreak`]]);
    resources.push([]); // a resource without rows
    for (const format of ['ndjson', 'csv', 'json'] as const) {
      const encoder = rowEncoder(format, columns, { header: true });
      const expected = encoder.start + resources.flat().map((row, i) => encoder.row(row, i)).join('') + encoder.end;
      const [part, ...more] = await write(format, resources);
      expect(more).toEqual([]);
      expect(part.text === expected).toBe(true);
      expect(part.bytes).toBe(Buffer.byteLength(expected));
      expect(part.count).toBe(3000);
    }
  });

  it('ends a part between resources once it holds its size in bytes, and counts each part exactly', async () => {
    const resources: ViewRow[][] = Array.from({ length: 400 }, (_, i) => [
      [`r${i}`, 'ä'.repeat(100)],
      [`r${i}`, 'b'],
    ]);
    const parts = await write('ndjson', resources, { maxPartResources: 1_000_000, maxPartBytes: 20_000 });
    expect(parts.length).toBeGreaterThan(4);
    const lines = parts.flatMap((p) => p.text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string }));
    expect(lines.map((l) => l.id)).toEqual(resources.flatMap((rows) => rows.map((r) => r[0])));
    for (const p of parts) {
      expect(p.bytes).toBe(Buffer.byteLength(p.text));
      expect(p.count).toBe(p.text.split('\n').filter(Boolean).length);
      expect(p.text.startsWith('{"id":')).toBe(true);
      // Both rows of a resource stay together: every part ends with a resource's last row.
      expect(p.text.trimEnd().split('\n').pop()).toMatch(/"text":"b"}$/);
    }
  });
});
