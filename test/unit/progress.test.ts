/** Import and generate progress: a bar on a terminal, running counts (at most every few seconds) otherwise. */
import { progressReporter } from '../../src/commands/progress';

const fakeStream = (isTTY: boolean) => {
  const written: string[] = [];
  const stream = { isTTY, columns: 120, write: (text: string) => (written.push(text), true), cursorTo: () => true, clearLine: () => true, moveCursor: () => true, on: () => stream, removeListener: () => stream };
  return { stream: stream as unknown as NodeJS.WriteStream, written };
};

describe('progress', () => {
  it('draws a bar of done over total with the note on a terminal', () => {
    const { stream, written } = fakeStream(true);
    const progress = progressReporter('import', 'files', stream);
    progress.update(1, 3, '120 resources');
    progress.update(3, 3, '400 resources');
    progress.stop();
    const text = written.join('');
    expect(text).toMatch(/import \[=+-*\] 1\/3 files \| 120 resources/);
    expect(text).toMatch(/import \[=+\] 3\/3 files \| 400 resources/);
  });

  it('writes running counts as lines, not a bar, when stderr is not a terminal', () => {
    const { stream, written } = fakeStream(false);
    const progress = progressReporter('generate', 'patients', stream);
    progress.update(1, 10, '240 resources');
    progress.update(2, 10, '480 resources'); // within a few seconds of the last line: not written
    progress.stop();
    expect(written).toEqual(['generate: 1/10 patients, 240 resources\n']);
  });
});
