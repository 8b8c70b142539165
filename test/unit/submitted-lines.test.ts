/** A batch of submitted lines parsed: prepared puts in order, and each refused line named by its number in the file. */
import { parseLines, type LineBatch } from '../../src/bulk-submit/submitted-lines';

function batchOf(type: string, lines: Array<[number, string]>): LineBatch {
  const bytes = Buffer.from(lines.map(([, text]) => text).join(''));
  const ends: number[] = [];
  let at = 0;
  for (const [, text] of lines) ends.push((at += Buffer.byteLength(text)));
  return { type, bytes, ends, numbers: lines.map(([n]) => n) };
}

describe('submitted lines', () => {
  it('prepares each resource of the file\'s type, with multi-byte text intact across line bounds', () => {
    const parsed = parseLines(
      batchOf('Patient', [
        [3, '{"resourceType":"Patient","id":"a","name":[{"family":"Müller"}]}\n'],
        [4, '{"resourceType":"Patient","id":"b","name":[{"family":"Ødegård"}]}\r\n'],
        [7, '  {"resourceType":"Patient","id":"c"}'],
      ]),
    );
    expect(parsed.issues).toEqual([]);
    expect(parsed.ops.map((op) => (op.op === 'put-prepared' ? `${op.prepared.resourceType}/${op.prepared.id}` : op.op))).toEqual(['Patient/a', 'Patient/b', 'Patient/c']);
    const body = (i: number) => {
      const op = parsed.ops[i];
      if (op.op !== 'put-prepared') throw new Error('expected a put');
      return JSON.parse(`${op.prepared.head}${op.prepared.tail}`) as { name: Array<{ family: string }> };
    };
    expect([body(0).name[0].family, body(1).name[0].family]).toEqual(['Müller', 'Ødegård']);
  });

  it('refuses, by line number, what is not JSON, not a resource, of another type, or without an id, and goes on', () => {
    const parsed = parseLines(
      batchOf('Observation', [
        [10, '{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"}}\n'],
        [11, '{not json\n'],
        [12, '{"resourceType":"Patient","id":"p"}\n'],
        [13, '{"resourceType":"Observation","status":"final","code":{"text":"x"}}\n'],
        [14, '{"id":"nothing"}\n'],
        [15, '{"resourceType":"Observation","id":"o2","status":"final","code":{"text":"y"}}\n'],
      ]),
    );
    expect(parsed.ops.map((op) => (op.op === 'put-prepared' ? op.prepared.id : op.op))).toEqual(['o1', 'o2']);
    expect(parsed.issues.map((i) => [i.line, i.severity])).toEqual([
      [11, 'error'],
      [12, 'error'],
      [13, 'error'],
      [14, 'error'],
    ]);
    expect(parsed.issues[0].diagnostics).toBe('line 11 is not JSON');
    expect(parsed.issues[1].diagnostics).toBe('line 12 holds a Patient in a file of Observation');
    expect(parsed.issues[2].diagnostics).toMatch(/^line 13: a submitted resource needs an id/);
    expect(parsed.issues[3].diagnostics).toMatch(/^line 14: /);
  });
});
