/**
 * Progress of `bulkflow import` and `generate` on stderr: a bar on a terminal (cli-progress),
 * running counts every few seconds otherwise (logs of a job stay readable).
 */
import { SingleBar } from 'cli-progress';

export interface Progress {
  /** `done` of `total` (of what the bar counts), with a short note (e.g. resources so far). */
  update(done: number, total: number, note: string): void;
  stop(): void;
}

const QUIET_MS = 5000;

export function progressReporter(label: string, unit: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new SingleBar({ stream, format: `${label} [{bar}] {value}/{total} ${unit} | {note} | {duration_formatted}`, hideCursor: true, clearOnComplete: false });
    let started = false;
    return {
      update(done, total, note) {
        if (!started) bar.start(total, done, { note });
        started = true;
        bar.setTotal(total);
        bar.update(done, { note });
      },
      stop: () => started && bar.stop(),
    };
  }
  let last = 0;
  return {
    update(done, total, note) {
      if (Date.now() - last < QUIET_MS) return;
      last = Date.now();
      stream.write(`${label}: ${done}/${total} ${unit}, ${note}\n`);
    },
    stop: () => undefined,
  };
}
