/**
 * Resources of any size: a 50 MB DocumentReference (an inline attachment) is written over REST
 * and imported from NDJSON, and exported by the real worker byte for byte, alone in a part
 * because it is larger than a part may be, between small resources that are each exported once.
 * A write larger than MAX_RESOURCE_BYTES is refused with 413 and an OperationOutcome.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { importPaths } from '../../src/import/importer';
import { awaitExport, kickoffHeaders, startExportStack, type ExportStack } from '../support/export-stack';

jest.setTimeout(300_000);

const MB = 1024 * 1024;
const PART_BYTES = 1 * MB;

/** A DocumentReference whose inline attachment makes its JSON about `megabytes` MB. */
const documentOf = (id: string, megabytes: number) => ({
  resourceType: 'DocumentReference',
  id,
  status: 'current',
  subject: { reference: 'Patient/p0' },
  content: [{ attachment: { contentType: 'application/pdf', data: Buffer.alloc(Math.floor((megabytes * MB * 3) / 4), id).toString('base64') } }],
});
const small = (i: number) => ({ resourceType: 'DocumentReference', id: `small-${i}`, status: 'current', subject: { reference: 'Patient/p0' }, description: 'x'.repeat(20_000) });

describe('resources larger than a part', () => {
  let stack: ExportStack;
  let dir: string;

  beforeAll(async () => {
    stack = await startExportStack({ settings: { maxPartBytes: PART_BYTES, maxPartResources: 1000, partitionSize: 100_000 }, maxResourceBytes: 60 * MB });
    await stack.startWorker();
    dir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-large-'));
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const put = (resource: { resourceType: string; id: string }) =>
    fetch(`${stack.fhir}/${resource.resourceType}/${resource.id}`, { method: 'PUT', headers: { 'Content-Type': 'application/fhir+json' }, body: JSON.stringify(resource) });

  it('writes, reads back and exports a 50 MB resource alone in its part, and the small ones around it exactly once', async () => {
    for (let i = 0; i < 60; i++) expect((await put(small(i))).status).toBe(201);
    const big = documentOf('big-rest', 50);
    const written = await put(big);
    expect(written.status).toBe(201);
    const stored = await written.text();
    expect(stored.length).toBeGreaterThan(50 * MB);
    // Imported from NDJSON as well, between small lines.
    const file = path.join(dir, 'large.ndjson');
    writeFileSync(file, [small(60), documentOf('big-import', 50), small(61)].map((r) => JSON.stringify(r)).join('\n') + '\n');
    const summary = await importPaths(stack.store, [file], { readerThread: false });
    expect(summary.skipped).toEqual([]);
    expect(summary.written).toEqual({ DocumentReference: 3 });
    for (let i = 62; i < 120; i++) expect((await put(small(i))).status).toBe(201);

    const read = await fetch(`${stack.fhir}/DocumentReference/big-rest`);
    expect(read.status).toBe(200);
    expect(await read.text()).toBe(stored);

    const kickoff = await fetch(`${stack.fhir}/$export?_type=DocumentReference`, { headers: kickoffHeaders });
    expect(kickoff.status).toBe(202);
    const { manifest } = await awaitExport(stack.client, kickoff.headers.get('content-location')!, 240_000);
    const ids: string[] = [];
    for (const item of manifest.output) {
      const text = await (await fetch(item.url)).text();
      const lines = text.split('\n').filter(Boolean);
      expect(lines.length).toBe(item.count);
      const inPart = lines.map((l) => (JSON.parse(l) as { id: string }).id);
      ids.push(...inPart);
      const bigOnes = inPart.filter((id) => id.startsWith('big-'));
      if (bigOnes.length > 0) {
        // A resource over the part size is alone in its part.
        expect(inPart).toEqual(bigOnes.slice(0, 1));
        if (bigOnes[0] === 'big-rest') expect(lines[0]).toBe(stored);
        else expect(JSON.parse(lines[0])).toMatchObject(documentOf('big-import', 50));
      } else {
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(PART_BYTES);
      }
    }
    const expected = ['big-rest', 'big-import', ...Array.from({ length: 120 }, (_, i) => `small-${i}`)].sort();
    expect(ids.sort()).toEqual(expected);
  });

  it('refuses a write over MAX_RESOURCE_BYTES with 413 and an OperationOutcome, and stores nothing', async () => {
    const res = await put(documentOf('too-big', 61));
    expect(res.status).toBe(413);
    const outcome = (await res.json()) as { resourceType: string; issue: Array<{ diagnostics: string }> };
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0].diagnostics).toMatch(/larger than 62914560 bytes/);
    expect((await fetch(`${stack.fhir}/DocumentReference/too-big`)).status).toBe(404);
  });
});
