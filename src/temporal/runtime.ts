/**
 * The Temporal SDK's runtime, installed once per process before the first worker or native
 * connection: its logs (the worker's, and its Rust core's, forwarded) into bulkflow's logger (one
 * format on stdout, `source: "temporal"` on each line, filtered by LOG_LEVEL), and with a
 * metrics port its own Prometheus metrics served on loopback.
 */
import { DefaultLogger, makeTelemetryFilterString, Runtime, type LogEntry } from '@temporalio/worker';
import type { LogLevel } from '../config';
import type { Logger } from '../log';

const SDK_LEVELS = { debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR' } as const;

/** Expected by design: the partition worker polls activities only (worker.ts), so it registers no workflows. */
const EXPECTED = new Set(['No workflows registered, not polling for workflow tasks']);

function forward(log: Logger, entry: LogEntry): void {
  const fields = { source: 'temporal', ...entry.meta };
  if (EXPECTED.has(entry.message)) return log.debug(entry.message, fields);
  switch (entry.level) {
    case 'TRACE':
    case 'DEBUG':
      return log.debug(entry.message, fields);
    case 'INFO':
      return log.info(entry.message, fields);
    case 'WARN':
      return log.warn(entry.message, fields);
    default:
      return log.error(entry.message, fields);
  }
}

export function installTemporalRuntime(log: Logger, level: LogLevel, metricsPort?: number): void {
  const sdkLevel = SDK_LEVELS[level];
  Runtime.install({
    logger: new DefaultLogger(sdkLevel, (entry) => forward(log, entry)),
    // Core's own logs: at the same level, forwarded to the logger above (not printed by Rust).
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: sdkLevel, other: 'WARN' }), forward: {} },
      ...(metricsPort === undefined ? {} : { metrics: { prometheus: { bindAddress: `127.0.0.1:${metricsPort}` } } }),
    },
  });
}
