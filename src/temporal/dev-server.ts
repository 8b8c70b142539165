import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { findBinary } from '../process/find-binary';
import { findFreePort } from '../process/free-port';
import { ManagedChild } from '../process/managed-child';
import { ensureSearchAttributes } from './search-attribute-registry';

export interface DevServerOptions {
  /** Explicit CLI path (TEMPORAL_CLI_PATH); otherwise .tools/bin, then PATH. */
  cliPath?: string;
  /** Frontend gRPC port; a free one when omitted. */
  port?: number;
  /** Web UI port; a free one when omitted. Ignored when `headless`. */
  uiPort?: number;
  headless?: boolean;
  /** The codec server the Web UI decodes payloads with (bulkflow's `/codec`). */
  uiCodecEndpoint?: string;
  /** SQLite file that keeps workflows across restarts; in memory when omitted. */
  dbFilename?: string;
  namespace?: string;
  /** Extra `--dynamic-config-value KEY=VALUE` settings. */
  dynamicConfig?: Record<string, string | number | boolean>;
  startTimeoutMs?: number;
}

export interface DevServer {
  address: string;
  namespace: string;
  uiUrl: string | undefined;
  pid: number | undefined;
  stop(): Promise<void>;
}

/**
 * Starts `temporal server start-dev`, waits until its frontend answers, registers the export
 * search attributes, and returns a handle that stops this server (and only it).
 */
export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const cli = findBinary('temporal', options.cliPath, 'TEMPORAL_CLI_PATH');
  const namespace = options.namespace ?? 'default';
  const port = options.port ?? (await findFreePort());
  const uiPort = options.headless ? undefined : (options.uiPort ?? (await findFreePort()));
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--namespace',
    namespace,
    '--log-level',
    'warn',
  ];
  if (uiPort === undefined) args.push('--headless');
  else args.push('--ui-port', String(uiPort));
  if (uiPort !== undefined && options.uiCodecEndpoint) args.push('--ui-codec-endpoint', options.uiCodecEndpoint);
  if (options.dbFilename) {
    mkdirSync(path.dirname(options.dbFilename), { recursive: true });
    args.push('--db-filename', options.dbFilename);
  }
  for (const [key, value] of Object.entries(options.dynamicConfig ?? {})) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }

  const child = new ManagedChild({ name: 'temporal dev server', command: cli, args });
  const address = `127.0.0.1:${port}`;
  let connection: Connection | undefined;
  await child.waitUntilReady(async () => {
    connection ??= await Connection.connect({ address, connectTimeout: 1000 });
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  }, options.startTimeoutMs ?? 60_000);
  try {
    await ensureSearchAttributes(connection!, namespace);
  } finally {
    await connection?.close();
  }
  return {
    address,
    namespace,
    uiUrl: uiPort === undefined ? undefined : `http://127.0.0.1:${uiPort}`,
    pid: child.pid,
    stop: () => child.stop(),
  };
}
