import path from 'node:path';
import type { Config } from '../config';
import type { Logger } from '../log';
import { generateIntoStore } from '../generate/write-population';
import { createPool, ensureDatabase, splitDatabaseUrl } from '../store/database';
import { migrate } from '../store/migrate';
import { ResourceStore } from '../store/resource-store';
import { ConfigError } from '../config';
import { startDevServer } from '../temporal/dev-server';
import { startTemporalServer } from '../temporal/temporal-server';
import { runApi } from './run-api';
import { runWorker } from './run-worker';
import { listenForMetrics } from './metrics-listener';
import { onShutdownSignal } from './shutdown';

/**
 * `bulkflow dev` (npm start): the embedded defaults in one process tree. A Temporal dev server
 * keeping its state in data/temporal.sqlite, or with `--temporal=server` (DEV_TEMPORAL=server)
 * the Temporal server on PostgreSQL (unless TEMPORAL_ADDRESS points elsewhere), the worker and
 * the API. Ctrl-C stops all three, in that order of safety: API, worker, server.
 */
export async function dev(config: Config, log: Logger, flag?: string): Promise<void> {
  if (flag !== undefined && flag !== 'server' && flag !== 'dev-server') throw new ConfigError('--temporal', `must be server or dev-server, got ${JSON.stringify(flag)}`);
  const which = (flag as Config['devTemporal'] | undefined) ?? config.devTemporal;
  if (await ensureDatabase(config.databaseUrl)) log.info('created database', { databaseUrl: redact(config.databaseUrl) });
  await prepareStore(config, log);

  let devServer: { stop(): Promise<void> } | undefined;
  let temporalAddress = config.temporalAddress;
  let codecCorsOrigins = config.codecCorsOrigins;
  if (!temporalAddress && which === 'server') {
    // The Temporal server itself, its databases beside the store's on the same PostgreSQL.
    const server = await startTemporalServer({
      databaseServerUrl: config.databaseUrl,
      databasePrefix: `${splitDatabaseUrl(config.databaseUrl).name}_temporal`,
      dataDir: path.join(config.dataDir, 'temporal-server'),
      namespace: config.temporalNamespace,
      port: config.devTemporalPort,
    });
    devServer = server;
    temporalAddress = server.address;
    log.info('Temporal server started', { address: server.address, databases: server.databases, pid: server.pid });
  } else if (!temporalAddress) {
    const server = await startDevServer({
      cliPath: config.temporalCliPath,
      port: config.devTemporalPort,
      uiPort: config.devTemporalUiPort,
      dbFilename: path.join(config.dataDir, 'temporal.sqlite'),
      namespace: config.temporalNamespace,
      // Payloads are encrypted: the embedded Web UI shows them through bulkflow's codec server.
      uiCodecEndpoint: `${config.baseUrl}/codec`,
    });
    devServer = server;
    temporalAddress = server.address;
    codecCorsOrigins = [...codecCorsOrigins, `http://127.0.0.1:${config.devTemporalUiPort}`, `http://localhost:${config.devTemporalUiPort}`];
    log.info('Temporal dev server started', { address: server.address, webUi: server.uiUrl, pid: server.pid });
  }

  try {
    const worker = await runWorker(config, temporalAddress, log);
    const api = await runApi({ ...config, codecCorsOrigins }, temporalAddress, log, 'dev');
    const metrics = await listenForMetrics(config, log, { api, worker });
    await onShutdownSignal(log, worker.done, async () => {
      await api.close();
      await worker.stop();
      await metrics?.close();
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
