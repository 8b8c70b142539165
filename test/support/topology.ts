/**
 * The production topology on one machine, for the tests that break it: `bulkflow serve` and
 * `bulkflow worker` processes against one Temporal frontend and one store, a generated
 * population written once, and the checks every fault ends with (an export part way; every
 * stored resource downloaded exactly once). A table of fault rounds is printed at the end, so
 * `npm run chaos` (ten rounds a fault) and CI (three) show what happened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadPayloadKeys } from '../../src/temporal/payload-keys';
import { encryptingDataConverter } from '../../src/temporal/data-converter';
import { generatePopulation } from '../../src/generate/population';
import { findFreePort } from '../../src/process/free-port';
import { createPool } from '../../src/store/database';
import { migrate } from '../../src/store/migrate';
import { ResourceStore } from '../../src/store/resource-store';
import { statusQuery } from '../../workflows/bulk-export';
import { describeExport, downloadAll, kickoffHeaders, pollUntilDone } from './export-stack';

const cli = path.resolve(__dirname, '../../dist/src/cli.js');

/** Rounds of each fault: 3 in CI, `CHAOS_ROUNDS` (10 with `npm run chaos`). */
export const FAULT_ROUNDS = Array.from({ length: Number(process.env.CHAOS_ROUNDS ?? 3) }, (_, i) => i + 1);

const dead = (p: Proc) => p.child.killed || p.child.exitCode !== null || p.child.signalCode !== null;

export interface Proc {
  child: ChildProcess;
  output: () => string;
}

export interface Api {
  proc: Proc;
  fhir: string;
}

export interface TopologyOptions {
  temporal: { address: string; namespace: string };
  databaseUrl: string;
  tenant: string;
  patients: number;
  /** Settings every process gets (output backend and place, part sizes, timeouts). */
  env: Record<string, string>;
  /** How a process is started (e.g. inside a namespace that holds the output filesystem); default: as it is. */
  launch?: (command: string, args: string[]) => [string, string[]];
}

export async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await Promise.resolve(check()).catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export class Topology {
  readonly apis: Api[] = [];
  readonly workers: Proc[] = [];
  readonly expected = new Set<string>();
  client!: Client;
  private connection!: Connection;
  private readonly baseEnv: Record<string, string>;

  /** The tenant whose data and exports the topology's processes serve. */
  get tenant(): string {
    return this.options.tenant;
  }

  constructor(private readonly options: TopologyOptions) {
    this.baseEnv = {
      TEMPORAL_ADDRESS: options.temporal.address,
      TEMPORAL_NAMESPACE: options.temporal.namespace,
      TEMPORAL_TASK_QUEUE: `topology-${process.pid}-${options.tenant}`,
      DATABASE_URL: options.databaseUrl,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      STATUS_POLL_TOLERANCE_MS: '120000', // the tests poll faster than Retry-After
      TENANT_MAX_RUNNING_EXPORTS: '100', // bursts of kick-offs are accepted, not refused by the cap
      ...options.env,
    };
  }

  /** Writes the population and connects a Temporal client; processes are started by the caller. */
  async prepare(): Promise<void> {
    const pool = createPool(this.options.databaseUrl, { max: 2 });
    await migrate(pool);
    // None at all for 0 patients: a recipient's store starts empty.
    const resources = this.options.patients > 0 ? [...generatePopulation({ patients: this.options.patients, seed: 61 })] : [];
    for (let i = 0; i < resources.length; i += 2000) {
      const written = await new ResourceStore(pool, this.options.tenant).write(resources.slice(i, i + 2000).map((resource) => ({ op: 'put' as const, resource })));
      for (const r of written) this.expected.add(`${r.resourceType}/${r.id}/${r.versionId}`);
    }
    // The processes encrypt payloads with the store's key; this client reads with the same.
    const dataConverter = encryptingDataConverter(await loadPayloadKeys(pool, undefined));
    await pool.end();
    this.connection = await Connection.connect({ address: this.options.temporal.address });
    this.client = new Client({ connection: this.connection, namespace: this.options.temporal.namespace, dataConverter });
  }

  private start(command: string, env: Record<string, string>): Proc {
    let output = '';
    const [file, args] = (this.options.launch ?? ((c, a) => [c, a]))(process.execPath, [cli, command]);
    const child = spawn(file, args, { env: { ...process.env, ...this.baseEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    return { child, output: () => output };
  }

  async startWorker(env: Record<string, string> = {}): Promise<Proc> {
    const worker = this.start('worker', { PORT: String(await findFreePort()), ...env });
    this.workers.push(worker);
    await until(() => worker.output().includes('worker polling'), `a worker to poll:\n${worker.output()}`);
    return worker;
  }

  /** Starts an API process; `at` replaces the API at that index (after it was killed). */
  async startApi(at = this.apis.length, env: Record<string, string> = {}): Promise<Api> {
    const port = await findFreePort();
    const proc = this.start('serve', { PORT: String(port), BASE_URL: `http://127.0.0.1:${port}`, ...env });
    const fhir = `http://127.0.0.1:${port}/t/${this.options.tenant}/fhir`;
    await until(async () => (await fetch(`${fhir}/metadata`)).status === 200, `an API to answer:\n${proc.output()}`);
    this.apis[at] = { proc, fhir };
    return this.apis[at];
  }

  /** Replaces killed workers and API processes until `workers` and `apis` are alive (before each fault round). */
  async heal(counts: { workers: number; apis: number }, workerEnv: Record<string, string> = {}): Promise<void> {
    for (let i = this.workers.length - 1; i >= 0; i--) if (dead(this.workers[i])) this.workers.splice(i, 1);
    while (this.workers.length < counts.workers) await this.startWorker(workerEnv);
    for (let i = 0; i < counts.apis; i++) if (!this.apis[i] || dead(this.apis[i].proc)) await this.startApi(i);
  }

  /** The workers and API processes that exited by themselves (a fault the test did not mean to kill them with), with their last output. */
  exitedByThemselves(): string[] {
    const procs = [...this.workers.map((p) => ['worker', p] as const), ...this.apis.map((a) => ['serve', a.proc] as const)];
    return procs
      .filter(([, p]) => !p.child.killed && dead(p))
      .map(([command, p]) => `${command} ${p.child.pid} exited (code ${p.child.exitCode}, signal ${p.child.signalCode}):\n${p.output().split('\n').slice(-15).join('\n')}`);
  }

  /** The status URL as another API process serves it. */
  onApi(statusUrl: string, api: Api): string {
    return statusUrl.replace(/^http:\/\/127\.0\.0\.1:\d+\/t\/[^/]+\/fhir/, api.fhir);
  }

  /** Kicks off an export on `api` and returns its status URL once some, not all, partitions are done. */
  async kickOffPartWay(api: Api): Promise<string> {
    const kick = await fetch(`${api.fhir}/$export`, { headers: kickoffHeaders });
    if (kick.status !== 202) throw new Error(`kick-off answered ${kick.status}: ${await kick.text()}`);
    const statusUrl = kick.headers.get('content-location')!;
    const handle = this.client.workflow.getHandle(statusUrl.split('/').pop()!);
    await until(async () => {
      const status = await handle.query(statusQuery);
      return status.partitionsDone >= 1 && status.partitionsDone < status.partitionsTotal;
    }, 'the export to be part way');
    return statusUrl;
  }

  /**
   * A worker running partitions of the export now (Temporal names it by `<pid>@<host>`), and every
   * activity it holds: the victim whose death the export must survive, never an idle one.
   */
  async busyWorker(statusUrl: string): Promise<{ worker: Proc; activityIds: string[] }> {
    const handle = this.client.workflow.getHandle(statusUrl.split('/').pop()!);
    let busy: { worker: Proc; activityIds: string[] } | undefined;
    await until(async () => {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      const started = pending.filter((a) => String(a.state) === '2' || String(a.state).includes('STARTED'));
      const worker = this.workers.find((w) => !dead(w) && started.some((a) => (a.lastWorkerIdentity ?? '').startsWith(`${w.child.pid}@`)));
      if (worker) busy = { worker, activityIds: started.filter((a) => (a.lastWorkerIdentity ?? '').startsWith(`${worker.child.pid}@`)).map((a) => a.activityId ?? '') };
      return busy !== undefined;
    }, 'a worker running a partition of the export');
    return busy!;
  }

  /** Whether any of the activities ran again after its first attempt (a retry elsewhere: its worker's death mattered). */
  async ranAgain(statusUrl: string, activityIds: string[]): Promise<boolean> {
    const events = (await this.client.workflow.getHandle(statusUrl.split('/').pop()!).fetchHistory()).events ?? [];
    const scheduled = new Set(events.filter((e) => activityIds.includes(e.activityTaskScheduledEventAttributes?.activityId ?? '')).map((e) => String(e.eventId)));
    return events.some((e) => scheduled.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId)) && (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1);
  }

  /** The export completes with the store's (type, id, versionId) set, each once; then it is deleted (its files with it). */
  async expectExactlyOnce(statusUrl: string, timeoutMs = 180_000): Promise<void> {
    const { manifest } = await pollUntilDone(statusUrl, timeoutMs).catch(async (err: Error) => Promise.reject(new Error(`${err.message}; ${await this.describe(statusUrl)}`)));
    const { keys } = await downloadAll(manifest);
    if (keys.length !== this.expected.size) throw new Error(`downloaded ${keys.length} resources, the store holds ${this.expected.size}`);
    const missing = [...this.expected].filter((k) => !keys.includes(k));
    if (missing.length > 0 || new Set(keys).size !== keys.length) throw new Error(`not exactly once: ${missing.length} missing, ${keys.length - new Set(keys).size} repeated`);
    const deleted = await fetch(statusUrl, { method: 'DELETE' });
    await deleted.arrayBuffer();
  }

  /** What the export's workflow is waiting on, and the workers' latest warnings (for a failure's message). */
  async describe(statusUrl: string): Promise<string> {
    const warnings = this.workers.map((w) => w.output().split('\n').filter((l) => /"level":"(warn|error)"/.test(l)).slice(-3).join('\n')).join('\n');
    return `${await describeExport(this.client, statusUrl)}; worker output: ${warnings}`;
  }

  async stop(): Promise<void> {
    for (const p of [...this.apis.map((a) => a.proc), ...this.workers]) p.child.kill('SIGKILL');
    await this.connection?.close();
  }
}

/** Fault rounds and how long each took from the fault to the verified export. */
export class FaultTable {
  private readonly rounds: Array<{ fault: string; seconds: number; passed: boolean }> = [];

  /** Runs one round of `fault`, timing it and recording whether it passed. */
  async round(fault: string, run: () => Promise<void>): Promise<void> {
    const started = Date.now();
    try {
      await run();
      this.rounds.push({ fault, seconds: (Date.now() - started) / 1000, passed: true });
    } catch (err) {
      this.rounds.push({ fault, seconds: (Date.now() - started) / 1000, passed: false });
      throw err;
    }
  }

  print(title: string): void {
    const faults = [...new Set(this.rounds.map((r) => r.fault))];
    const lines = [`${title}`, `${'fault'.padEnd(64)} ${'rounds'.padStart(6)} ${'passed'.padStart(6)} ${'median s'.padStart(9)} ${'max s'.padStart(7)}`];
    for (const fault of faults) {
      const of = this.rounds.filter((r) => r.fault === fault);
      const seconds = of.map((r) => r.seconds).sort((a, b) => a - b);
      lines.push(
        `${fault.padEnd(64)} ${String(of.length).padStart(6)} ${String(of.filter((r) => r.passed).length).padStart(6)} ${seconds[Math.floor(seconds.length / 2)].toFixed(1).padStart(9)} ${seconds[seconds.length - 1].toFixed(1).padStart(7)}`,
      );
    }
    process.stdout.write(`\n${lines.join('\n')}\n`);
  }
}
