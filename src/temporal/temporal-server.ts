/**
 * The Temporal server itself (not the CLI's dev server), on PostgreSQL, as a cluster would run
 * it: its persistence and SQL visibility databases created and migrated with its own schema tool
 * (`temporal-sql-tool`, schema files from the server's module, both installed by
 * deploy/install-tools.sh), a config written for free ports, the four services in one process,
 * the namespace registered, and bulkflow's search attributes (SQL visibility allows 10 Keyword,
 * 3 KeywordList, 3 Int and 3 Datetime custom attributes per namespace; bulkflow uses 7, 1, 1, 1).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { findBinary, projectRoot } from '../process/find-binary';
import { findFreePortIn } from '../process/free-port';
import { ManagedChild } from '../process/managed-child';
import { connectionConfig, dropDatabase, ensureDatabase } from '../store/database';
import { ensureSearchAttributes } from './search-attribute-registry';

const run = promisify(execFile);

export interface TemporalServerOptions {
  /** The PostgreSQL server (a URL; its path is ignored) that holds the two databases. */
  databaseServerUrl: string;
  /** Database names: `<prefix>` (persistence) and `<prefix>_visibility`. */
  databasePrefix: string;
  /** Where the server's config is written. */
  dataDir: string;
  namespace?: string;
  /** Frontend gRPC port; a free one when omitted. */
  port?: number;
  serverPath?: string;
  sqlToolPath?: string;
  /** The server's `schema/postgresql` folder (default `.tools/temporal-schema/postgresql`). */
  schemaDir?: string;
  startTimeoutMs?: number;
}

export interface TemporalServer {
  address: string;
  namespace: string;
  pid: number | undefined;
  /** The two databases' names. */
  databases: { persistence: string; visibility: string };
  stop(): Promise<void>;
  /** Starts the stopped server again on the same databases and ports (a restart). */
  restart(): Promise<void>;
  /** Drops both databases (after stop). */
  dropDatabases(): Promise<void>;
  /** The last lines the server logged (warnings and errors), for a failure's message. */
  readonly output: string;
}

/** Host, port and login of a postgres:// URL, as bulkflow's own connections read it (no user name: the OS user). */
function serverLogin(serverUrl: string): { host: string; port: number; user: string; password: string } {
  const url = new URL(connectionConfig(serverUrl).connectionString!);
  return { host: url.hostname || '127.0.0.1', port: Number(url.port || 5432), user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
}

/** Creates a database if missing and brings its schema to the newest version the server ships. */
async function prepareDatabase(sqlTool: string, serverUrl: string, name: string, versionedDir: string): Promise<void> {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const created = await ensureDatabase(url.toString());
  const connection = serverLogin(url.toString());
  const args = ['--plugin', 'postgres12', '--ep', connection.host, '-p', String(connection.port), '-u', connection.user, '--db', name];
  const env = { ...process.env, SQL_PASSWORD: connection.password };
  if (created) await run(sqlTool, [...args, 'setup-schema', '-v', '0.0'], { env });
  await run(sqlTool, [...args, 'update-schema', '-d', versionedDir], { env });
}

function configYaml(o: { host: string; port: number; user: string; password: string; persistence: string; visibility: string; ports: number[]; dynamicConfig: string }): string {
  const store = (database: string, conns: number) => `
      sql:
        pluginName: "postgres12"
        databaseName: "${database}"
        connectAddr: "${o.host}:${o.port}"
        connectProtocol: "tcp"
        user: "${o.user}"
        password: "${o.password}"
        maxConns: ${conns}
        maxIdleConns: ${conns}
        maxConnLifetime: "1h"`;
  const [frontend, history, matching, worker, frontendMembers, historyMembers, matchingMembers, workerMembers, http] = o.ports;
  return `log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:${store(o.persistence, 20)}
    visibility:${store(o.visibility, 4)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
services:
  frontend:
    rpc: { grpcPort: ${frontend}, membershipPort: ${frontendMembers}, bindOnLocalHost: true, httpPort: ${http} }
  history:
    rpc: { grpcPort: ${history}, membershipPort: ${historyMembers}, bindOnLocalHost: true }
  matching:
    rpc: { grpcPort: ${matching}, membershipPort: ${matchingMembers}, bindOnLocalHost: true }
  worker:
    rpc: { grpcPort: ${worker}, membershipPort: ${workerMembers}, bindOnLocalHost: true }
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "127.0.0.1:${frontend}"
dcRedirectionPolicy:
  policy: "noop"
dynamicConfigClient:
  filepath: "${o.dynamicConfig}"
  pollInterval: "10s"
`;
}

/** Until the namespace is registered and served (the frontend's namespace cache refreshes every few seconds). */
async function registerNamespace(connection: Connection, namespace: string): Promise<void> {
  try {
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('7 days') });
  } catch (err) {
    if (!/already exists/i.test((err as Error).message)) throw err;
  }
}

export async function startTemporalServer(options: TemporalServerOptions): Promise<TemporalServer> {
  const server = findBinary('temporal-server', options.serverPath, 'TEMPORAL_SERVER_PATH');
  const sqlTool = findBinary('temporal-sql-tool', options.sqlToolPath, 'TEMPORAL_SQL_TOOL_PATH');
  const schemaDir = options.schemaDir ?? path.join(projectRoot, '.tools', 'temporal-schema', 'postgresql');
  const namespace = options.namespace ?? 'default';
  const databases = { persistence: options.databasePrefix, visibility: `${options.databasePrefix}_visibility` };
  await prepareDatabase(sqlTool, options.databaseServerUrl, databases.persistence, path.join(schemaDir, 'v12', 'temporal', 'versioned'));
  await prepareDatabase(sqlTool, options.databaseServerUrl, databases.visibility, path.join(schemaDir, 'v12', 'visibility', 'versioned'));

  // Below the kernel's ephemeral range: the server keeps membership ports in a smallint column.
  const ports = [options.port ?? (await findFreePortIn(20_000, 32_000))];
  while (ports.length < 9) {
    const port = await findFreePortIn(20_000, 32_000);
    if (!ports.includes(port)) ports.push(port);
  }
  const connection = serverLogin(options.databaseServerUrl);
  const configDir = path.resolve(options.dataDir, 'config');
  mkdirSync(configDir, { recursive: true });
  const dynamicConfig = path.join(configDir, 'dynamicconfig.yaml');
  writeFileSync(dynamicConfig, '{}\n');
  writeFileSync(
    path.join(configDir, 'bulkflow.yaml'),
    configYaml({ ...connection, ...databases, ports, dynamicConfig }),
  );
  const address = `127.0.0.1:${ports[0]}`;

  let child: ManagedChild;
  const start = async () => {
    child = new ManagedChild({ name: 'temporal server', keepOutputLines: 80, command: server, args: ['--root', path.resolve(options.dataDir), '--config', 'config', '--env', 'bulkflow', '--allow-no-auth', 'start'] });
    let client: Connection | undefined;
    try {
      await child.waitUntilReady(async () => {
        client ??= await Connection.connect({ address, connectTimeout: 1000 });
        await client.workflowService.getSystemInfo({});
        return true;
      }, options.startTimeoutMs ?? 90_000);
      await registerNamespace(client!, namespace);
      await child.waitUntilReady(async () => {
        await client!.workflowService.countWorkflowExecutions({ namespace, query: '' });
        return true;
      }, options.startTimeoutMs ?? 90_000);
      await ensureSearchAttributes(client!, namespace, { timeoutMs: options.startTimeoutMs ?? 90_000 });
    } finally {
      await client?.close();
    }
  };
  await start();
  return {
    address,
    namespace,
    get pid() {
      return child.pid;
    },
    get output() {
      return child.output;
    },
    databases,
    stop: () => child.stop(),
    restart: async () => {
      await child.stop();
      await start();
    },
    dropDatabases: async () => {
      for (const name of Object.values(databases)) {
        const url = new URL(options.databaseServerUrl);
        url.pathname = `/${name}`;
        await dropDatabase(url.toString());
      }
    },
  };
}
