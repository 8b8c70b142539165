/**
 * `bulkflow serve` and `bulkflow worker` against a Temporal server they did not launch (started
 * here as an operator would, with `temporal server start-dev`, so nothing of bulkflow registered
 * its search attributes): they register what is missing at start, or, told not to, refuse to
 * start naming what is missing; `bulkflow temporal setup` registers them; then a kick-off
 * through the tenant cap (which queries them) exports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { findBinary } from '../../src/process/find-binary';
import { findFreePort } from '../../src/process/free-port';
import { generatePopulation } from '../../src/generate/population';
import { ResourceStore } from '../../src/store/resource-store';
import { exportSearchAttributeKeys } from '../../src/temporal/search-attribute-registry';
import { testEnvironment } from '../harness/environment';
import { migratedPool, uniqueTenant } from '../support/database';
import { kickoffHeaders, pollUntilDone } from '../support/export-stack';

const cli = path.resolve(__dirname, '../../dist/src/cli.js');

interface Running {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

function run(args: string[], env: Record<string, string>): Running {
  let output = '';
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exit };
}

async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await Promise.resolve(check()).catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('serve and worker against a Temporal server bulkflow did not launch', () => {
  let server: ChildProcess;
  let address: string;
  const outputDir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-external-'));
  const started: Running[] = [];
  const tenant = uniqueTenant('external');

  beforeAll(async () => {
    const port = await findFreePort();
    address = `127.0.0.1:${port}`;
    // As an operator starts a server: two namespaces, no search attributes of bulkflow's.
    server = spawn(findBinary('temporal', undefined, 'TEMPORAL_CLI_PATH'), ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port), '--namespace', 'checked', '--namespace', 'registered', '--log-level', 'error'], {
      stdio: 'ignore',
    });
    const connection = await (async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          const c = await Connection.connect({ address, connectTimeout: 1000 });
          await c.workflowService.describeNamespace({ namespace: 'registered' });
          return c;
        } catch (err) {
          if (attempt > 100) throw err;
          await new Promise((resolve) => setTimeout(resolve, 300));
        }
      }
    })();
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'registered' });
    expect(Object.keys(customAttributes ?? {}).filter((name) => name.startsWith('Bulkflow'))).toEqual([]);
    await connection.close();
    const pool = await migratedPool(2);
    await new ResourceStore(pool, tenant).write([...generatePopulation({ patients: 3, seed: 5 })].map((resource) => ({ op: 'put' as const, resource })));
    await pool.end();
  });
  afterAll(async () => {
    for (const process of started) process.child.kill('SIGKILL');
    server.kill('SIGKILL');
    rmSync(outputDir, { recursive: true, force: true });
  });

  const envFor = async (namespace: string, extra: Record<string, string> = {}) => {
    const port = await findFreePort();
    return {
      port,
      env: {
        TEMPORAL_ADDRESS: address,
        TEMPORAL_NAMESPACE: namespace,
        TEMPORAL_TASK_QUEUE: `external-${namespace}`,
        DATABASE_URL: testEnvironment.databaseUrl,
        PORT: String(port),
        HOST: '127.0.0.1',
        BASE_URL: `http://127.0.0.1:${port}`,
        OUTPUT_DIR: outputDir,
        LOG_LEVEL: 'info',
        STATUS_POLL_TOLERANCE_MS: '120000', // the test polls faster than Retry-After
        ...extra,
      },
    };
  };

  it('refuses to start, naming every missing attribute and how to create it, when told not to register them', async () => {
    for (const command of ['serve', 'worker']) {
      const { env } = await envFor('checked', { TEMPORAL_REGISTER_SEARCH_ATTRIBUTES: 'false' });
      const refused = run([command], env);
      expect(await refused.exit).toBe(1);
      for (const key of exportSearchAttributeKeys) expect(refused.output()).toContain(key.name);
      expect(refused.output()).toContain('bulkflow temporal setup');
      expect(refused.output()).toContain('temporal operator search-attribute create --namespace checked');
      expect(refused.output()).not.toMatch(/\n\s+at /); // a message, not a stack trace
    }
  });

  it('registers them with bulkflow temporal setup, idempotently', async () => {
    const { env } = await envFor('checked');
    const first = run(['temporal', 'setup'], env);
    expect(await first.exit).toBe(0);
    expect(first.output()).toContain(`registered ${exportSearchAttributeKeys.map((k) => k.name).join(', ')}`);
    const again = run(['temporal', 'setup'], env);
    expect(await again.exit).toBe(0);
    expect(again.output()).toContain('registered nothing');
    const checked = run(['serve'], { ...(await envFor('checked', { TEMPORAL_REGISTER_SEARCH_ATTRIBUTES: 'false' })).env });
    started.push(checked);
    await until(() => checked.output().includes('listening') || checked.child.exitCode !== null, 'serve to start');
    expect(checked.child.exitCode).toBeNull();
  });

  it('registers what is missing at start, then exports through the tenant cap', async () => {
    const api = await envFor('registered');
    const worker = run(['worker'], (await envFor('registered')).env);
    const serve = run(['serve'], api.env);
    started.push(worker, serve);
    await until(() => worker.output().includes('worker polling'), `the worker to poll:\n${worker.output()}`);
    const fhir = `http://127.0.0.1:${api.port}/t/${tenant}/fhir`;
    await until(async () => (await fetch(`${fhir}/metadata`)).status === 200, `the API to answer:\n${serve.output()}`);
    const kick = await fetch(`${fhir}/$export`, { headers: kickoffHeaders });
    expect(kick.status).toBe(202);
    const { manifest } = await pollUntilDone(kick.headers.get('content-location')!);
    expect(manifest.output.reduce((n, o) => n + o.count, 0)).toBe([...generatePopulation({ patients: 3, seed: 5 })].length);
    // One log format: every line the worker printed is bulkflow's JSON, the Temporal SDK's and
    // its core's own lines forwarded into it.
    const lines = worker.output().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { level: string; message: string; source?: string; sdkComponent?: string });
    expect(lines.every((l) => typeof l.level === 'string' && typeof l.message === 'string')).toBe(true);
    expect(new Set(lines.filter((l) => l.source === 'temporal').map((l) => l.sdkComponent))).toEqual(new Set(['core', 'worker']));
  });
});
