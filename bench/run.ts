/** `npm run bench -- <import|export|views|sql|sql-run|api|large|lake|submit> [options]`: prints figures and ratios against a baseline of the same run. */
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
  const [name = 'import', ...args] = process.argv.slice(2);
  const bench = benches[name];
  if (!bench) throw new Error(`unknown benchmark "${name}"; one of: ${Object.keys(benches).join(', ')}`);
  await bench(args);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
