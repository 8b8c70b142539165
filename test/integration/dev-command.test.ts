/**
 * `bulkflow dev` (what `npm start` runs) as a user sees it: the API (on loopback only, without
 * tokens) and the Temporal Web UI answer, Ctrl-C (SIGINT) stops everything it started with exit code 0, and a second start
 * finds the Temporal state of the first; `--temporal=server` runs the Temporal server on
 * PostgreSQL instead, and an export goes through it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection, NamespaceNotFoundError, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { createPool, dropDatabase } from '../../src/store/database';
import { findFreePort, findFreePortIn } from '../../src/process/free-port';
import { kickoffHeaders, pollUntilDone } from '../support/export-stack';
import { testEnvironment } from '../harness/environment';

const cli = path.resolve(__dirname, '../../dist/src/cli.js');

function startDev(env: Record<string, string>, args: string[] = []): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, [cli, 'dev', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  return { child, output: () => output };
}

async function waitFor(check: () => Promise<boolean>, what: string, output: () => string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out waiting for ${what}; output:\n${output()}`);
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

/** This machine's IPv4 addresses other than loopback (where other machines reach it). */
const networkAddresses = () => Object.values(os.networkInterfaces()).flatMap((list) => list ?? []).filter((a) => a.family === 'IPv4' && !a.internal).map((a) => a.address);

function portIsOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('bulkflow dev', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-dev-'));
  const databaseUrl = (() => {
    const url = new URL(testEnvironment.databaseUrl);
    url.pathname = `${url.pathname}_dev`;
    return url.toString();
  })();
  let env: Record<string, string>;
  let running: ReturnType<typeof startDev> | undefined;

  beforeAll(async () => {
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` (npm test does)`);
    env = {
      PORT: String(await findFreePort()),
      DEV_TEMPORAL_PORT: String(await findFreePort()),
      DEV_TEMPORAL_UI_PORT: String(await findFreePort()),
      DATA_DIR: dataDir,
      DATABASE_URL: databaseUrl,
      LOG_LEVEL: 'warn',
    };
    env.BASE_URL = `http://127.0.0.1:${env.PORT}`;
  });

  // A test that failed midway leaves its process: the next one must not talk to it on the same port.
  afterEach(async () => {
    if (running && running.child.exitCode === null && running.child.signalCode === null) {
      running.child.kill('SIGKILL');
      await exitOf(running.child);
    }
  });

  afterAll(async () => {
    if (running && running.child.exitCode === null) {
      running.child.kill('SIGKILL');
      await exitOf(running.child);
    }
    rmSync(dataDir, { recursive: true, force: true });
    await dropDatabase(databaseUrl);
  });

  it('serves the API and the Web UI, stops on SIGINT, and keeps Temporal state across restarts', async () => {
    running = startDev(env);
    const { output } = running;
    await waitFor(async () => (await fetch(`${env.BASE_URL}/fhir/metadata`)).ok, 'the API', output);
    const metadata = (await (await fetch(`${env.BASE_URL}/fhir/metadata`)).json()) as { resourceType: string };
    expect(metadata.resourceType).toBe('CapabilityStatement');
    const ui = await fetch(`http://127.0.0.1:${env.DEV_TEMPORAL_UI_PORT}/`);
    expect(ui.status).toBe(200);
    // Loopback only, where it needs no token: the machine's other addresses are refused.
    expect((await fetch(`${env.BASE_URL}/fhir/Patient?_count=1`)).status).toBe(200);
    for (const address of networkAddresses()) expect([address, await portIsOpen(Number(env.PORT), address)]).toEqual([address, false]);

    // A workflow on a queue nobody polls stays open: it must still be there after a restart.
    const workflowId = `restart-check-${Date.now()}`;
    const connection = await Connection.connect({ address: `127.0.0.1:${env.DEV_TEMPORAL_PORT}` });
    // Right after start, the dev server's history service may not know the namespace its frontend
    // already describes (seen once under CI load): this test's own start waits that out.
    await waitFor(
      () =>
        new Client({ connection }).workflow.start('notRegistered', { taskQueue: 'nobody-polls', workflowId }).then(
          () => true,
          (err: unknown) => (err instanceof WorkflowExecutionAlreadyStartedError ? true : err instanceof NamespaceNotFoundError ? false : Promise.reject(err)),
        ),
      'the namespace to take a workflow',
      output,
    );
    await connection.close();

    running.child.kill('SIGINT');
    expect(await exitOf(running.child)).toBe(0);
    expect(await portIsOpen(Number(env.DEV_TEMPORAL_PORT))).toBe(false);
    expect(await portIsOpen(Number(env.PORT))).toBe(false);
    expect(existsSync(path.join(dataDir, 'temporal.sqlite'))).toBe(true);

    running = startDev(env);
    await waitFor(async () => (await fetch(`${env.BASE_URL}/fhir/metadata`)).ok, 'the API after restart', running.output);
    const again = await Connection.connect({ address: `127.0.0.1:${env.DEV_TEMPORAL_PORT}` });
    const description = await new Client({ connection: again }).workflow.getHandle(workflowId).describe();
    await again.close();
    expect(description.status.name).toBe('RUNNING');

    running.child.kill('SIGTERM');
    expect(await exitOf(running.child)).toBe(0);
  });

  it('--temporal=server runs the Temporal server on PostgreSQL, exports through it, and stops on SIGINT', async () => {
    const serverUrl = new URL(databaseUrl);
    serverUrl.pathname = `${serverUrl.pathname}_server`;
    const storeUrl = serverUrl.toString();
    const storeName = serverUrl.pathname.slice(1);
    const serverEnv = { ...env, DATABASE_URL: storeUrl, DEV_SEED_PATIENTS: '2', DEV_TEMPORAL_PORT: String(await findFreePortIn(20_000, 32_000)), DATA_DIR: path.join(dataDir, 'server'), STATUS_POLL_TOLERANCE_MS: '120000' };
    const dev = startDev(serverEnv, ['--temporal=server']);
    try {
      await waitFor(async () => (await fetch(`${env.BASE_URL}/fhir/metadata`)).ok, 'the API', dev.output, 120_000);
      expect(dev.output()).not.toContain('dev server started');
      const kick = await fetch(`${env.BASE_URL}/fhir/$export`, { headers: kickoffHeaders });
      if (kick.status !== 202) throw new Error(`kick-off ${kick.status}: ${await kick.text()}\n${dev.output()}`);
      const { manifest } = await pollUntilDone(kick.headers.get('content-location')!, 120_000);
      expect(manifest.output.reduce((n, o) => n + o.count, 0)).toBeGreaterThan(100);
      // The workflow ran on the server whose persistence is in PostgreSQL.
      const connection = await Connection.connect({ address: `127.0.0.1:${serverEnv.DEV_TEMPORAL_PORT}` });
      // Raw: the export's memo is encrypted with the dev store's key, which this test has no need of.
      const workflowId = kick.headers.get('content-location')!.split('/').pop()!;
      const description = await connection.workflowService.describeWorkflowExecution({ namespace: 'default', execution: { workflowId } });
      await connection.close();
      expect(description.workflowExecutionInfo?.type?.name).toBe('bulkExport');
      // And that server keeps it in PostgreSQL: the export's execution is a row of its persistence database.
      const persistence = new URL(storeUrl);
      persistence.pathname = `/${storeName}_temporal`;
      const pool = createPool(persistence.toString(), { max: 1 });
      try {
        const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM current_executions WHERE workflow_id = $1', [workflowId]);
        expect(Number(rows[0].n)).toBe(1);
      } finally {
        await pool.end();
      }
      dev.child.kill('SIGINT');
      expect(await exitOf(dev.child)).toBe(0);
      expect(await portIsOpen(Number(serverEnv.DEV_TEMPORAL_PORT))).toBe(false);
    } finally {
      if (dev.child.exitCode === null) dev.child.kill('SIGKILL');
      for (const name of [storeName, `${storeName}_temporal`, `${storeName}_temporal_visibility`]) {
        const url = new URL(storeUrl);
        url.pathname = `/${name}`;
        await dropDatabase(url.toString());
      }
    }
  });
});
