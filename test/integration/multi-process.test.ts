/**
 * The production topology on one machine, under fire: the Temporal server and the store on a
 * PostgreSQL cluster of the test's own, two `bulkflow serve` and three `bulkflow worker`
 * processes, export files on a small filesystem of their own (a tmpfs in a user namespace: no root
 * needed). A kick-off on one API
 * process is polled, downloaded and cancelled through the other; one export's partitions run on
 * several workers at once (read from the workflow history). Then each fault, `FAULT_ROUNDS`
 * times, mid-export: one worker killed with SIGKILL; all three killed and started again; the
 * answering API process killed during a burst of kick-offs; the Temporal server restarted;
 * PostgreSQL stopped as a crash stops it and started again; the output filesystem full. Each
 * ends with every resource exactly once.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDatabase } from '../../src/store/database';
import { statusQuery } from '../../workflows/bulk-export';
import { startTemporalServer, type TemporalServer } from '../../src/temporal/temporal-server';
import { downloadAll, kickoffHeaders, pollUntilDone, failureMessage } from '../support/export-stack';
import { startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres';
import { FAULT_ROUNDS, FaultTable, Topology, until } from '../support/topology';
import { mountSmallFilesystem, type SmallFilesystem } from '../support/small-filesystem';

const OUTPUT_FS_BYTES = 256 * 1024 * 1024;
jest.setTimeout(240_000);

describe('two API and three worker processes on the Temporal server, under faults', () => {
  let postgres: PrivatePostgres;
  let server: TemporalServer;
  let topology: Topology;
  const faults = new FaultTable();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-topology-'));
  let smallFs: SmallFilesystem;
  /** The export files' folder as this test reads and fills it (the processes see it at smallFs.inside). */
  let outputDir: string;

  beforeAll(async () => {
    postgres = await startPrivatePostgres();
    // Export files on a filesystem of their own, small enough to fill, mounted without root in a namespace every bulkflow process runs in.
    smallFs = await mountSmallFilesystem(path.join(dataDir, 'output'), OUTPUT_FS_BYTES);
    outputDir = smallFs.outside;
    server = await startTemporalServer({ databaseServerUrl: postgres.serverUrl, databasePrefix: 'bulkflow_topology', dataDir: path.join(dataDir, 'server') });
    topology = new Topology({
      temporal: { address: server.address, namespace: server.namespace },
      databaseUrl: `${postgres.serverUrl}/bulkflow`,
      tenant: 'topology',
      patients: 60,
      launch: smallFs.launch,
      env: {
        OUTPUT_DIR: smallFs.inside, // shared by every process, as a shared volume or bucket is
        EXPORT_PARTITION_SIZE: '500',
        EXPORT_PART_MAX_RESOURCES: '200',
        EXPORT_PARALLELISM: '6',
        EXPORT_HEARTBEAT_TIMEOUT_SECONDS: '3',
      },
    });
    await ensureDatabase(`${postgres.serverUrl}/bulkflow`);
    await topology.prepare();
    for (let i = 0; i < 3; i++) await topology.startWorker();
    for (let i = 0; i < 2; i++) await topology.startApi();
  }, 240_000);
  afterAll(async () => {
    faults.print('faults mid-export on two API and three worker processes (each ends with every resource exactly once)');
    await topology?.stop();
    await server?.stop();
    postgres?.destroy();
    await smallFs?.release();
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  // Each fault round starts with three workers and two API processes, whatever the last one killed.
  beforeEach(() => topology.heal({ workers: 3, apis: 2 }), 120_000);

  it('kicks off on one API, polls and downloads through the other, partitions spread over the workers', async () => {
    const [first, other] = topology.apis;
    const kick = await fetch(`${first.fhir}/$export`, { headers: kickoffHeaders });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    expect(statusUrl.startsWith(first.fhir)).toBe(true);
    const { manifest } = await pollUntilDone(topology.onApi(statusUrl, other), 120_000);
    const { keys } = await downloadAll({ ...manifest, output: manifest.output.map((o) => ({ ...o, url: topology.onApi(o.url, other) })) });
    expect(keys.length).toBe(topology.expected.size);
    expect(new Set(keys)).toEqual(topology.expected);

    // From the history: which worker started each partition, and that several ran at once.
    const history = await topology.client.workflow.getHandle(statusUrl.split('/').pop()!).fetchHistory();
    const events = history.events ?? [];
    const partitions = new Set(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'exportPartition').map((e) => String(e.eventId)));
    const startedBy = events.filter((e) => e.activityTaskStartedEventAttributes && partitions.has(String(e.activityTaskStartedEventAttributes.scheduledEventId))).map((e) => e.activityTaskStartedEventAttributes!.identity);
    expect(startedBy.length).toBe(partitions.size);
    expect(new Set(startedBy).size).toBeGreaterThanOrEqual(2);
  });

  it('cancels through the other API process: 202, then 404 on both', async () => {
    const [other, first] = topology.apis;
    const kick = await fetch(`${first.fhir}/$export`, { headers: kickoffHeaders });
    const statusUrl = kick.headers.get('content-location')!;
    const exportId = statusUrl.split('/').pop()!;
    const handle = topology.client.workflow.getHandle(exportId);
    await until(async () => (await handle.query(statusQuery)).partitionsDone >= 1, 'some files written'); // something to delete
    expect((await fetch(topology.onApi(statusUrl, other), { method: 'DELETE' })).status).toBe(202);
    expect((await fetch(topology.onApi(statusUrl, other))).status).toBe(404);
    expect((await fetch(statusUrl)).status).toBe(404);
    // The cancel reached the workflow, whichever API took it, and the files went with it.
    await until(async () => (await handle.describe()).status.name === 'CANCELLED', 'the export to end cancelled');
    const directory = path.join(outputDir, topology.tenant, exportId);
    await until(async () => !existsSync(directory) || readdirSync(directory).length === 0, 'its files to be deleted');
  });

  it.each(FAULT_ROUNDS)('ends with every resource exactly once when one of three workers is killed with SIGKILL mid-export (round %i)', async () => {
    await faults.round('SIGKILL of one worker of three', async () => {
      // The victim holds partitions when it dies, and one of them ran again elsewhere. Partitions
      // can finish in the instant between seeing them and the kill: then the kill did not matter,
      // and the round goes again (at most five times) with the next export.
      let hit = false;
      for (let attempt = 0; attempt < 5 && !hit; attempt++) {
        if (attempt > 0) await topology.heal({ workers: 3, apis: 2 });
        const statusUrl = await topology.kickOffPartWay(topology.apis[0]);
        const victim = await topology.busyWorker(statusUrl);
        victim.worker.child.kill('SIGKILL');
        await topology.expectExactlyOnce(topology.onApi(statusUrl, topology.apis[1]));
        hit = await topology.ranAgain(statusUrl, victim.activityIds);
      }
      expect(hit).toBe(true);
    });
  });

  it.each(FAULT_ROUNDS)('ends with every resource exactly once when all three workers are killed mid-export and started again (round %i)', async () => {
    await faults.round('SIGKILL of all three workers, then three started', async () => {
      const statusUrl = await topology.kickOffPartWay(topology.apis[1]);
      for (const worker of topology.workers) worker.child.kill('SIGKILL');
      await topology.heal({ workers: 3, apis: 2 });
      await topology.expectExactlyOnce(statusUrl);
    });
  });

  it.each(FAULT_ROUNDS)('keeps every 202 of a burst real when the API process that answered is killed with SIGKILL in the middle (round %i)', async () => {
    // A kick-off answers 202 only after Temporal accepted the export's workflow, so every 202 a
    // client received names a real export. A request whose answer was lost may still have started
    // one: that export runs unseen until it expires (accepted requests are never lost; unanswered
    // ones are at most once).
    await faults.round('SIGKILL of the API process during a burst of 20 kick-offs', async () => {
      const [victim, other] = topology.apis;
      let firstAccepted: () => void = () => undefined;
      const accepted = new Promise<void>((resolve) => (firstAccepted = resolve));
      const answers = Array.from({ length: 20 }, () =>
        fetch(`${victim.fhir}/$export?_type=Patient`, { headers: kickoffHeaders }).then(
          (res) => {
            if (res.status !== 202) return `status ${res.status}`;
            firstAccepted();
            return res.headers.get('content-location')!;
          },
          () => undefined, // the connection died with the process
        ),
      );
      // Killed once the first kick-off was answered, with the others still in flight (they take turns per tenant).
      await Promise.race([accepted, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      victim.proc.child.kill('SIGKILL');
      const all = await Promise.all(answers);
      const received = all.filter((a): a is string => a !== undefined && !a.startsWith('status'));
      expect(received.length).toBeGreaterThan(0);
      expect(all.filter((a) => a === undefined).length).toBeGreaterThan(0); // the kill landed mid-burst: some requests lost their answer
      for (const statusUrl of received) {
        const status = await fetch(topology.onApi(statusUrl, other));
        expect([200, 202]).toContain(status.status); // known to the other API process: a real export
        await status.arrayBuffer();
        await (await fetch(topology.onApi(statusUrl, other), { method: 'DELETE' })).arrayBuffer();
      }
    });
  });

  it.each(FAULT_ROUNDS)('ends with every resource exactly once when the Temporal server restarts mid-export (round %i)', async () => {
    await faults.round('restart of the Temporal server', async () => {
      const statusUrl = await topology.kickOffPartWay(topology.apis[0]);
      await server.stop();
      await server.restart();
      await topology.expectExactlyOnce(statusUrl);
      expect(topology.exitedByThemselves()).toEqual([]);
    });
  });

  it.each(FAULT_ROUNDS)('ends with every resource exactly once when PostgreSQL is stopped with -m immediate mid-export and started again (round %i)', async () => {
    await faults.round('PostgreSQL stopped with -m immediate, started 3 s later', async () => {
      const statusUrl = await topology.kickOffPartWay(topology.apis[1]);
      postgres.crash(); // the store and the Temporal server's databases at once
      await new Promise((resolve) => setTimeout(resolve, 3000));
      postgres.start();
      // Every process rides the crash out: a worker that died of a connection lost while it held a
      // client left the export waiting with no one to run it (once all three had died).
      await topology.expectExactlyOnce(statusUrl).catch((err: Error) => Promise.reject(new Error(`${err.message}\n${topology.exitedByThemselves().join('\n')}\ntemporal server output:\n${server.output}`)));
      expect(topology.exitedByThemselves()).toEqual([]);
    });
  }, 240_000);

  it.each(FAULT_ROUNDS)('retries while the output filesystem is full and completes once space returns, every resource exactly once (round %i)', async () => {
    await faults.round('output filesystem full (ENOSPC), then space freed', async () => {
      // Leave 64 KiB, and keep it so while the files of earlier rounds' deleted exports go: the
      // first part files fail to write.
      const fillers: string[] = [];
      const fill = () => {
        const { bavail, bsize } = statfsSync(outputDir);
        if (bavail * bsize <= 128 * 1024) return;
        fillers.push(path.join(outputDir, `filler-${fillers.length}`));
        execFileSync('fallocate', ['-l', String(bavail * bsize - 64 * 1024), fillers[fillers.length - 1]]);
      };
      fill();
      let statusUrl: string;
      try {
        const kick = await fetch(`${topology.apis[0].fhir}/$export`, { headers: kickoffHeaders });
        statusUrl = kick.headers.get('content-location')!;
        const handle = topology.client.workflow.getHandle(statusUrl.split('/').pop()!);
        // The partition fails with the cause, promptly (not by its heartbeat timing out).
        let seen = '';
        await until(async () => {
          fill();
          const { raw } = await handle.describe();
          const pending = await Promise.all((raw.pendingActivities ?? []).map(async (a) => [a.activityType?.name, a.attempt, await failureMessage(topology.client, a.lastFailure)] as const));
          seen = JSON.stringify(pending);
          return pending.some(([, , message]) => /ENOSPC/.test(message ?? ''));
        }, 'a partition to fail with ENOSPC').catch((err: Error) => Promise.reject(new Error(`${err.message}; pending: ${seen}`)));
        const status = await fetch(statusUrl);
        expect(status.status).toBe(202); // still in progress, not complete with a part missing
        await status.arrayBuffer();
      } finally {
        for (const filler of fillers) rmSync(filler, { force: true });
      }
      await topology.expectExactlyOnce(statusUrl);
      expect(topology.exitedByThemselves()).toEqual([]);
    });
  });
});
