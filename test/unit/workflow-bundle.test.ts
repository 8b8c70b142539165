/** The prebuilt workflow bundle (npm run build) that workers load, and that each workflow thread holds again. */
import { readFileSync } from 'node:fs';
import path from 'node:path';

const workflowBundlePath = path.resolve(__dirname, '..', '..', 'dist', 'workflow-bundle.js');

describe('workflow bundle', () => {
  it('is ASCII only, so V8 keeps it as a one-byte string (one non-ASCII character doubles it in every isolate)', () => {
    const code = readFileSync(workflowBundlePath, 'utf8');
    expect(code.length).toBeGreaterThan(100_000);
    expect(code.match(/[^\x00-\x7f]/g) ?? []).toEqual([]);
    // Escaped characters still mean what they meant: the bundle still carries the workflows' own text.
    expect(code).toContain('viewExport');
  });
});
