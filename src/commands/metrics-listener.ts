import type { Config } from '../config';
import type { Logger } from '../log';
import { processRegistry } from '../metrics/metrics';
import { startMetricsServer, type MetricsServer } from '../metrics/metrics-server';
import type { RunningApi } from './run-api';
import type { RunningWorker } from './run-worker';

/**
 * With METRICS_PORT set, the process's metrics listener: the process's own metrics, the API's
 * and the worker's registries it runs, the Temporal SDK's metrics, and the worker's readiness.
 */
export async function listenForMetrics(config: Config, log: Logger, parts: { api?: RunningApi; worker?: RunningWorker }): Promise<MetricsServer | undefined> {
  if (config.metricsPort === undefined) return undefined;
  const server = await startMetricsServer({
    host: config.metricsHost,
    port: config.metricsPort,
    registries: [processRegistry(), ...(parts.api ? [parts.api.metrics.registry] : []), ...(parts.worker ? [parts.worker.metrics.registry] : [])],
    extra: parts.worker?.sdkMetrics,
    notReady: parts.worker ? () => parts.worker!.notReady() : undefined,
  });
  log.info('metrics listening', { url: `${server.url}/metrics` });
  return server;
}
