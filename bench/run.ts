/** `npm run bench -- <import|export|views|sql|sql-run|api|large|lake|submit> [options] [--node=<versions>]`: prints figures and ratios against a baseline of the same run. */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { benchApi } from './api';
import { benchExport } from './export';
import { benchImport } from './import';
import { benchLake } from './lake';
import { benchLarge } from './large';
import { benchSql } from './sql';
import { benchSqlRun } from './sql-run';
import { benchSubmit } from './submit';
import { benchViews } from './views';

const benches: Record<string, (args: string[]) => Promise<void>> = { import: benchImport, export: benchExport, views: benchViews, sql: benchSql, api: benchApi, large: benchLarge, lake: benchLake, 'sql-run': benchSqlRun, submit: benchSubmit };

async function main(): Promise<void> {
  const [name = 'import', ...all] = process.argv.slice(2);
  const bench = benches[name];
  if (!bench) throw new Error(`unknown benchmark "${name}"; one of: ${Object.keys(benches).join(', ')}`);
  // `--node=20.20.2,26.12.1`: the whole bench once per Node.js version, its worker processes on
  // that version (from the npm registry, deploy/install-node.sh), one after the other in one run.
  const versions = all.find((a) => a.startsWith('--node='))?.split('=')[1]?.split(',');
  const args = all.filter((a) => !a.startsWith('--node='));
  if (!versions) return bench(args);
  for (const version of versions) {
    const bin = execFileSync('bash', [path.resolve(__dirname, '..', '..', 'deploy', 'install-node.sh'), version], { encoding: 'utf8' }).trim().split('\n').pop()!;
    process.env.BENCH_WORKER_NODE = path.join(bin, 'node');
    console.log(`\n== workers on Node ${execFileSync(process.env.BENCH_WORKER_NODE, ['--version'], { encoding: 'utf8' }).trim()} ==`);
    await bench(args);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
