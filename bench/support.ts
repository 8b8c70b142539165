import { dropDatabase, ensureDatabase } from '../src/store/database';

export async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** Runs `work` on a fresh database on BENCH_DATABASE_SERVER_URL (default: the local server), dropped afterwards. */
export async function benchDatabase(label: string, work: (databaseUrl: string) => Promise<void>): Promise<void> {
  const url = new URL(process.env.BENCH_DATABASE_SERVER_URL ?? 'postgres://127.0.0.1:5432');
  url.pathname = `/bulkflow_bench_${label}_${process.pid}`;
  const databaseUrl = url.toString();
  await dropDatabase(databaseUrl);
  await ensureDatabase(databaseUrl);
  try {
    await work(databaseUrl);
  } finally {
    await dropDatabase(databaseUrl);
  }
}

/** rows: [label, resources, seconds]; ratios against `baselinePerSecond`. */
export function printTable(rows: Array<[string, number, number]>, baselinePerSecond: number): void {
  console.log('');
  console.log(`${'case'.padEnd(42)} ${'resources'.padStart(10)} ${'seconds'.padStart(8)} ${'res/s'.padStart(10)} ${'vs baseline'.padStart(12)}`);
  for (const [label, resources, seconds] of rows) {
    const rate = resources / seconds;
    console.log(
      `${label.padEnd(42)} ${String(resources).padStart(10)} ${seconds.toFixed(2).padStart(8)} ${rate.toFixed(0).padStart(10)} ${(rate / baselinePerSecond).toFixed(2).padStart(11)}x`,
    );
  }
}

