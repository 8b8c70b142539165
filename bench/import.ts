/**
 * Import and generate throughput (resources/s) on generated data, and on the shared Synthea
 * sample when it is present, against a baseline measured in the same run: PostgreSQL's own
 * COPY of the same NDJSON lines into an unindexed table (the physical write limit here).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { from as copyFrom } from 'pg-copy-streams';
import { generateIntoStore, generateToNdjson } from '../src/generate/write-population';
import { importPaths } from '../src/import/importer';
import { createPool } from '../src/store/database';
import { migrate } from '../src/store/migrate';
import { ResourceStore } from '../src/store/resource-store';
import { benchDatabase, printTable, timed } from './support';

const SYNTHEA_DIR = path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'synthea-r4-100');

export async function benchImport(args: string[]): Promise<void> {
  const patients = Number(args.find((a) => a.startsWith('--patients='))?.split('=')[1] ?? '200');
  await benchDatabase('import', async (databaseUrl) => {
    const pool = createPool(databaseUrl, { max: 4 });
    await migrate(pool);
    const rows: Array<[string, number, number]> = [];
    try {
      const tmp = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-bench-'));
      const counts = await generateToNdjson(tmp, { patients, seed: 42 });
      const total = Object.values(counts).reduce((a, b) => a + b, 0);

      const copySeconds = await timed(async () => {
        const client = await pool.connect();
        try {
          await client.query('CREATE TEMP TABLE copy_baseline (body text)');
          for (const file of readdirSync(tmp)) {
            const lines = readFileSync(path.join(tmp, file), 'utf8').replace(/\\/g, '\\\\');
            await pipeline(Readable.from([lines]), client.query(copyFrom('COPY copy_baseline (body) FROM STDIN')));
          }
        } finally {
          client.release();
        }
      });
      rows.push(['COPY baseline (same lines, no indexes)', total, copySeconds]);

      rows.push(['generate into store', total, await timed(() => generateIntoStore(new ResourceStore(pool, 'bench-generate'), { patients, seed: 42 }))]);
      rows.push(['import generated NDJSON', total, await timed(() => importPaths(new ResourceStore(pool, 'bench-import'), [tmp]))]);
      rmSync(tmp, { recursive: true, force: true });

      if (existsSync(SYNTHEA_DIR)) {
        let written = 0;
        const seconds = await timed(async () => {
          const summary = await importPaths(new ResourceStore(pool, 'bench-synthea'), [SYNTHEA_DIR]);
          written = Object.values(summary.written).reduce((a, b) => a + b, 0) + summary.unchanged;
        });
        rows.push(['import Synthea sample (100 patients)', written, seconds]);
      } else {
        console.log(`Synthea sample not found at ${SYNTHEA_DIR}: skipping that row`);
      }
    } finally {
      await pool.end();
    }
    printTable(rows, rows[0][1] / rows[0][2]); // the COPY baseline's resources per second
  });
}
