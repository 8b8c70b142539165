/**
 * SIGTERM, as a deploy sends it. A worker stops polling, gives its running partitions
 * WORKER_SHUTDOWN_GRACE_SECONDS to finish or heartbeat, and exits 0; the export then completes on
 * another worker with every resource exactly once. An API process stops accepting connections,
 * finishes the response it is sending, and exits 0.
 */
import { once } from 'node:events';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { testEnvironment } from '../harness/environment';
import { uniqueTenant } from '../support/database';
import { kickoffHeaders, pollUntilDone } from '../support/export-stack';
import { Topology } from '../support/topology';

jest.setTimeout(180_000);

describe('graceful shutdown on SIGTERM', () => {
  let topology: Topology;
  const outputDir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-shutdown-'));

  beforeAll(async () => {
    topology = new Topology({
      temporal: { address: testEnvironment.temporalAddress, namespace: testEnvironment.temporalNamespace },
      databaseUrl: testEnvironment.databaseUrl,
      tenant: uniqueTenant('shutdown'),
      patients: 40,
      env: {
        OUTPUT_DIR: outputDir,
        EXPORT_PARTITION_SIZE: '5000',
        EXPORT_PART_MAX_RESOURCES: '100000', // one part per partition: files larger than the sockets' buffers
        EXPORT_HEARTBEAT_TIMEOUT_SECONDS: '3',
        WORKER_SHUTDOWN_GRACE_SECONDS: '2',
      },
    });
    await topology.prepare();
    await topology.startApi();
  }, 120_000);
  afterAll(async () => {
    await topology?.stop();
    rmSync(outputDir, { recursive: true, force: true });
  });

  it('lets a worker exit 0 within its grace period mid-export; the export completes on the next worker exactly once', async () => {
    const worker = await topology.startWorker();
    const statusUrl = await topology.kickOffPartWay(topology.apis[0]);
    const started = Date.now();
    const exited = once(worker.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    worker.child.kill('SIGTERM');
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    // Within its 2 s grace and the closing of its connections: a worker that ignored the grace
    // would wait for the partition (tens of seconds), one that ignored SIGTERM would not exit.
    expect(Date.now() - started).toBeLessThan(2000 + 3000);
    expect(worker.output()).toMatch(/"message":"shutting down".*"reason":"SIGTERM"|"reason":"SIGTERM".*"message":"shutting down"/);
    expect(worker.output()).toContain('"message":"stopped"');
    await topology.startWorker();
    await topology.expectExactlyOnce(statusUrl);
  });

  it('keeps idle connections open past a load balancer\'s idle timeout (Node\'s 5 s default made clients reuse connections the server was closing)', async () => {
    const agent = new http.Agent({ keepAlive: true });
    try {
      const get = () =>
        new Promise<{ response: http.IncomingMessage; reused: boolean }>((resolve, reject) => {
          const request = http.get(`${topology.apis[0].fhir}/metadata`, { agent }, (response) => resolve({ response, reused: request.reusedSocket })).on('error', reject);
        });
      const first = await get();
      first.response.resume();
      await once(first.response, 'end');
      expect(first.reused).toBe(false);
      // Idle past Node's 5 s default: the server must still hold the connection, so the client's reuse succeeds.
      await new Promise((resolve) => setTimeout(resolve, 5_500));
      const second = await get();
      second.response.resume();
      await once(second.response, 'end');
      expect(second.reused).toBe(true);
      expect(second.response.statusCode).toBe(200);
    } finally {
      agent.destroy();
    }
  });

  it('lets an API process finish the response it is sending, refuse new connections, and exit 0', async () => {
    if (topology.workers.length === 0) await topology.startWorker();
    const kick = await fetch(`${topology.apis[0].fhir}/$export?_type=Observation`, { headers: kickoffHeaders });
    const { manifest } = await pollUntilDone(kick.headers.get('content-location')!, 120_000);
    const file = manifest.output[0];
    const api = topology.apis[0];
    // A download under way, read slowly: the first bytes, then SIGTERM, then the rest.
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => http.get(file.url, resolve).on('error', reject));
    expect(response.statusCode).toBe(200);
    const chunks: Buffer[] = [];
    response.pause();
    const exited = once(api.proc.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    api.proc.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 500));
    await expect(fetch(`${api.fhir}/metadata`)).rejects.toThrow(); // no longer accepting
    expect(api.proc.child.exitCode).toBeNull(); // held open by the response still being sent
    response.on('data', (chunk: Buffer) => chunks.push(chunk));
    response.resume();
    await once(response, 'end');
    const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean);
    expect(lines.length).toBe(file.count);
    const [code] = await exited;
    expect(code).toBe(0);
  });
});
