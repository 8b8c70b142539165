/**
 * `npm run bench -- api`: one `bulkflow serve` process (and one `bulkflow worker`) on a Temporal
 * dev server and an idle store of 20 generated patients, measured from this process as clients:
 *
 * - a burst of 200 concurrent kick-offs under the default tenant cap, before any worker polls (the
 *   exports it starts stay running): each answered 202 or 429, none 5xx or lost (every 202's
 *   status URL is known), exactly the cap accepted;
 * - kick-off latency, one request at a time (the cap raised), p50/p99: 200 on the idle machine (no
 *   worker running yet: the target's case), then 100 while the worker runs the exports they start;
 * - status polls per second from 32 concurrent clients for 10 s on completed exports' status
 *   URLs, p50/p99.
 *
 * Targets: >= 500 polls/s per API process, kick-off p99 < 50 ms.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateIntoStore } from '../src/generate/write-population';
import { findFreePort } from '../src/process/free-port';
import { createPool } from '../src/store/database';
import { migrate } from '../src/store/migrate';
import { ResourceStore } from '../src/store/resource-store';
import { startDevServer } from '../src/temporal/dev-server';
import { benchDatabase } from './support';

const cli = path.resolve(__dirname, '..', 'src', 'cli.js');
const TENANT = 'bench';
const KICKOFF = { Accept: 'application/fhir+json', Prefer: 'respond-async' };

function start(command: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [cli, command], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout!.resume();
  return child;
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** SIGTERM, then until the process has exited (at once when it already has). */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** A `bulkflow serve` process with `env` until `work` is done. */
async function withApi<T>(env: Record<string, string>, work: (fhir: string) => Promise<T>): Promise<T> {
  const port = await findFreePort();
  const api = start('serve', { ...env, PORT: String(port), HOST: '127.0.0.1', BASE_URL: `http://127.0.0.1:${port}` });
  const fhir = `http://127.0.0.1:${port}/t/${TENANT}/fhir`;
  try {
    await until(async () => {
      if (api.exitCode !== null) throw new Error(`bulkflow serve exited with ${api.exitCode}`);
      return (await fetch(`${fhir}/metadata`)).status === 200;
    }, 'the API to answer');
    return await work(fhir);
  } finally {
    await stop(api);
  }
}

export async function benchApi(): Promise<void> {
  const devServer = await startDevServer({ headless: true });
  const outputDir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-bench-api-'));
  try {
    await benchDatabase('api', async (databaseUrl) => {
      const pool = createPool(databaseUrl, { max: 2 });
      await migrate(pool);
      await generateIntoStore(new ResourceStore(pool, TENANT), { patients: 20, seed: 9 });
      await pool.end();
      const env = { DATABASE_URL: databaseUrl, TEMPORAL_ADDRESS: devServer.address, TEMPORAL_TASK_QUEUE: `bench-api-${Date.now()}`, OUTPUT_DIR: outputDir, STATUS_POLL_TOLERANCE_MS: '120000' };
      // The burst runs before any worker polls, so the exports it starts stay running and count.
      let worker: ChildProcess | undefined;
      try {
        const burst = await withApi(env, async (fhir) => {
          const answers = await Promise.all(
            Array.from({ length: 200 }, () =>
              fetch(`${fhir}/$export?_type=Patient`, { headers: KICKOFF }).then(async (res) => ({ status: res.status, location: res.headers.get('content-location'), body: await res.text() })),
            ),
          );
          const accepted = answers.filter((a) => a.status === 202);
          let known = 0;
          for (const a of accepted) if ([200, 202].includes((await fetch(a.location!).then(async (r) => (await r.arrayBuffer(), r))).status)) known++;
          return { accepted: accepted.length, refused: answers.filter((a) => a.status === 429).length, other: answers.filter((a) => a.status !== 202 && a.status !== 429).map((a) => a.status), known };
        });
        const measured = await withApi({ ...env, TENANT_MAX_RUNNING_EXPORTS: '10000' }, async (fhir) => {
          for (let i = 0; i < 20; i++) await (await fetch(`${fhir}/$export?_type=Patient`, { headers: KICKOFF })).arrayBuffer(); // warm-up
          const statusUrls: string[] = [];
          const kickOffs = async (n: number) => {
            const ms: number[] = [];
            for (let i = 0; i < n; i++) {
              const started = process.hrtime.bigint();
              const res = await fetch(`${fhir}/$export?_type=Patient`, { headers: KICKOFF });
              await res.arrayBuffer();
              ms.push(Number(process.hrtime.bigint() - started) / 1e6);
              if (res.status !== 202) throw new Error(`kick-off answered ${res.status}`);
              statusUrls.push(res.headers.get('content-location')!);
            }
            return ms.sort((a, b) => a - b);
          };
          // Idle: no worker runs yet, so nothing but the kick-offs uses the machine.
          const kickoffMs = await kickOffs(200);
          worker = start('worker', env);
          await until(async () => (await fetch(statusUrls[0]).then(async (r) => (await r.arrayBuffer(), r))).status === 200, 'the worker to complete an export');
          // Busy: the worker runs the exports the kick-offs start, on the same cores.
          const busyKickoffMs = await kickOffs(100);
          // Polls on completed exports (each answer is the manifest), once every export has completed: the API process alone is measured.
          for (const url of statusUrls) await until(async () => (await fetch(url).then(async (r) => (await r.arrayBuffer(), r))).status === 200, 'an export to complete');
          const done = statusUrls.slice(0, 32);
          const pollMs: number[] = [];
          const deadline = Date.now() + 10_000;
          let failures = 0;
          await Promise.all(
            done.map(async (url) => {
              while (Date.now() < deadline) {
                const started = process.hrtime.bigint();
                const res = await fetch(url);
                await res.arrayBuffer();
                if (res.status !== 200) failures++;
                pollMs.push(Number(process.hrtime.bigint() - started) / 1e6);
              }
            }),
          );
          return { kickoffMs, busyKickoffMs, pollMs: pollMs.sort((a, b) => a - b), failures };
        });
        const pollsPerSecond = measured.pollMs.length / 10;
        console.log('');
        console.log('one `bulkflow serve` process, one worker, a Temporal dev server, an idle store of 20 patients, on this machine');
        console.log(`burst of 200 concurrent kick-offs (tenant cap 10): ${burst.accepted} accepted (202), ${burst.refused} refused (429), other answers: ${JSON.stringify(burst.other)}; ${burst.known} of the 202s known at their status URL`);
        console.log(`kick-off latency, idle (200, one at a time, no worker running): p50 ${percentile(measured.kickoffMs, 50).toFixed(1)} ms, p99 ${percentile(measured.kickoffMs, 99).toFixed(1)} ms (target p99 < 50 ms: ${percentile(measured.kickoffMs, 99) < 50 ? 'met' : 'MISSED'})`);
        console.log(`kick-off latency, busy (100, one at a time, the worker running the exports they start): p50 ${percentile(measured.busyKickoffMs, 50).toFixed(1)} ms, p99 ${percentile(measured.busyKickoffMs, 99).toFixed(1)} ms`);
        console.log(
          `status polls (32 clients, 10 s, completed exports): ${pollsPerSecond.toFixed(0)}/s, p50 ${percentile(measured.pollMs, 50).toFixed(1)} ms, p99 ${percentile(measured.pollMs, 99).toFixed(1)} ms, ${measured.failures} not 200 (target >= 500/s: ${pollsPerSecond >= 500 ? 'met' : 'MISSED'})`,
        );
      } finally {
        if (worker) await stop(worker);
      }
    });
  } finally {
    await devServer.stop();
    rmSync(outputDir, { recursive: true, force: true });
  }
}
