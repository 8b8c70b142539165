import path from 'node:path';
import type { Config } from '../config';
import type { Logger } from '../log';
import { generateIntoStore } from '../generate/write-population';
import { createPool, ensureDatabase } from '../store/database';
import { migrate } from '../store/migrate';
import { ResourceStore } from '../store/resource-store';
import { startDevServer, type DevServer } from '../temporal/dev-server';
import { runApi } from './run-api';
import { runWorker } from './run-worker';
import { onShutdownSignal } from './shutdown';

/**
 * `bulkflow dev` (npm start): the embedded defaults in one process tree. A Temporal dev server
 * keeping its state in data/temporal.sqlite (unless TEMPORAL_ADDRESS points elsewhere), the
 * worker and the API. Ctrl-C stops all three, in that order of safety: API, worker, server.
 */
export async function dev(config: Config, log: Logger): Promise<void> {
  if (await ensureDatabase(config.databaseUrl)) log.info('created database', { databaseUrl: redact(config.databaseUrl) });
  await prepareStore(config, log);

  let devServer: DevServer | undefined;
  let temporalAddress = config.temporalAddress;
  if (!temporalAddress) {
    devServer = await startDevServer({
      cliPath: config.temporalCliPath,
      port: config.devTemporalPort,
      uiPort: config.devTemporalUiPort,
      dbFilename: path.join(config.dataDir, 'temporal.sqlite'),
      namespace: config.temporalNamespace,
    });
    temporalAddress = devServer.address;
    log.info('Temporal dev server started', { address: devServer.address, webUi: devServer.uiUrl, pid: devServer.pid });
  }

  try {
    const worker = await runWorker(config, temporalAddress, log);
    const api = await runApi(config, temporalAddress, log);
    await onShutdownSignal(log, worker.done, async () => {
      await api.close();
      await worker.stop();
    });
  } finally {
    await devServer?.stop();
  }
}

/** Migrates the store and, when it is empty, loads a small generated population to export. */
async function prepareStore(config: Config, log: Logger): Promise<void> {
  const pool = createPool(config.databaseUrl, { max: 2 });
  try {
    const applied = await migrate(pool);
    if (applied.length > 0) log.info('applied migrations', { versions: applied });
    if (config.devSeedPatients === 0) return;
    const { rowCount } = await pool.query('SELECT 1 FROM resource_versions LIMIT 1');
    if (rowCount) return;
    const counts = await generateIntoStore(new ResourceStore(pool), { patients: config.devSeedPatients, seed: 1 });
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    log.info('empty store: loaded a generated population', { patients: config.devSeedPatients, resources: total });
  } finally {
    await pool.end();
  }
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}
