import path from 'node:path';
import type { Config } from '../config';
import type { Logger } from '../log';
import { ensureDatabase } from '../store/database';
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
    const api = await runApi(config, log);
    await onShutdownSignal(log, worker.done, async () => {
      await api.close();
      await worker.stop();
    });
  } finally {
    await devServer?.stop();
  }
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}
