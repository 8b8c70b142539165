/**
 * `npm run bench -- large`: resources far larger than a part. A store of small
 * DocumentReferences is exported by a fresh worker process, then again with 50 MB
 * DocumentReferences (inline attachments) among them, 2 and then 6 of them: seconds, MB/s and
 * the worker's peak RSS, against the small-only export of the same run. A part is 16 MB here,
 * so each large resource is alone in its part. Peak RSS should grow with the largest resource,
 * not with how many there are.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalOutputStore } from '../src/output/local-output-store';
import { createPool } from '../src/store/database';
import { migrate } from '../src/store/migrate';
import { ResourceStore } from '../src/store/resource-store';
import { startDevServer } from '../src/temporal/dev-server';
import { timedBulkExport } from './service';
import { benchDatabase } from './support';

const MB = 1024 * 1024;
const TENANT = 'bench';
const SMALL = 5000;

const document = (id: string, bytes: number) => ({
  resourceType: 'DocumentReference',
  id,
  status: 'current',
  subject: { reference: `Patient/p${id.length}` },
  content: [{ attachment: { contentType: 'application/pdf', data: Buffer.alloc(Math.floor((bytes * 3) / 4), id).toString('base64') } }],
});

export async function benchLarge(args: string[]): Promise<void> {
  const largeMb = Number(args.find((a) => a.startsWith('--large-mb='))?.split('=')[1] ?? '50');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-bench-large-'));
  const devServer = await startDevServer({ headless: true });
  const rows: Array<{ label: string; resources: number; bytes: number; seconds: number; peakRssMb: number }> = [];
  try {
    await benchDatabase('large', async (databaseUrl) => {
      const pool = createPool(databaseUrl, { max: 4 });
      await migrate(pool);
      const store = new ResourceStore(pool, TENANT);
      for (let i = 0; i < SMALL; i += 500) {
        await store.write(Array.from({ length: 500 }, (_, j) => ({ op: 'put' as const, resource: document(`small-${i + j}`, 8 * 1024) })));
      }
      const outputDir = path.join(tmp, 'local');
      const service = {
        databaseUrl,
        tenant: TENANT,
        temporalAddress: devServer.address,
        env: { OUTPUT_BACKEND: 'local', OUTPUT_DIR: outputDir, EXPORT_PART_MAX_BYTES: String(16 * MB) },
        output: new LocalOutputStore(outputDir),
      };
      const run = async (label: string) => rows.push({ label, ...(await timedBulkExport(service, '/$export?_type=DocumentReference')) });
      await run(`${SMALL} small DocumentReferences (8 KB)`);
      let large = 0;
      for (const total of [2, 6]) {
        for (; large < total; large++) await store.write([{ op: 'put', resource: document(`large-${large}`, largeMb * MB) }]);
        await run(`... and ${total} of ${largeMb} MB`);
      }
      await pool.end();
    });
  } finally {
    await devServer.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  console.log('');
  console.log(`resources larger than a part (16 MB parts); a fresh worker process per export`);
  console.log(`${'case'.padEnd(40)} ${'resources'.padStart(9)} ${'MB'.padStart(6)} ${'seconds'.padStart(8)} ${'MB/s'.padStart(7)} ${'peak RSS'.padStart(9)} ${'vs small only'.padStart(14)}`);
  for (const r of rows) {
    console.log(
      `${r.label.padEnd(40)} ${String(r.resources).padStart(9)} ${(r.bytes / 1e6).toFixed(0).padStart(6)} ${r.seconds.toFixed(1).padStart(8)} ${(r.bytes / 1e6 / r.seconds).toFixed(1).padStart(7)} ${`${r.peakRssMb.toFixed(0)} MB`.padStart(9)} ${`+${(r.peakRssMb - rows[0].peakRssMb).toFixed(0)} MB`.padStart(14)}`,
    );
  }
}
