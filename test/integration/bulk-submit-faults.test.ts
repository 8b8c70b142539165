/**
 * The loop proof under faults: one bulkflow instance (the provider, in this process, behind a file
 * server that cuts every third download part way) exports; a second one (the recipient: two
 * `bulkflow worker` processes and one `bulkflow serve`, its store on a PostgreSQL cluster of the
 * test's own) takes each export by `$bulk-submit`. One submission stays open across the rounds:
 * each round the provider's data changes (updates, creates, deletes), its new export is
 * submitted replacing the previous manifest, and a fault strikes while the files load: the
 * worker holding a file's activity killed with SIGKILL, or the recipient's PostgreSQL stopped as a
 * crash stops it and started 3 s later. After every round the recipient holds exactly the
 * provider's resources (content equal, nothing more, nothing missing).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pool } from 'pg';
import { generatePopulation } from '../../src/generate/population';
import { submissionJobId } from '../../src/http/routes/bulk-submit';
import { createPool, ensureDatabase } from '../../src/store/database';
import { submissionStatusQuery } from '../../workflows/bulk-submission';
import { testEnvironment } from '../harness/environment';
import { uniqueTenant } from '../support/database';
import { startDroppingProxy, type DroppingProxy } from '../support/dropping-proxy';
import { kickoffHeaders, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';
import { startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres';
import { awaitSubmission, storeContents, submit } from '../support/submissions';
import { FAULT_ROUNDS, FaultTable, Topology, until } from '../support/topology';

jest.setTimeout(300_000);

const submitter = { system: 'https://provider.test/ids', value: 'loop' };
const SUBMISSION = 'loop-under-faults';

describe('$bulk-submit loop under faults', () => {
  let postgres: PrivatePostgres;
  let provider: ExportStack;
  let proxy: DroppingProxy;
  let topology: Topology;
  let recipientPool: Pool;
  const tenant = uniqueTenant('submit-faults');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-submit-faults-'));
  const faults = new FaultTable();
  let previous: string | undefined;
  let changes = 0;
  const jobId = submissionJobId(tenant, submitter, SUBMISSION);
  const handle = () => topology.client.workflow.getHandle(jobId);

  /** Updates, creates and deletes some of the provider's resources. */
  async function change(): Promise<void> {
    changes++;
    const { rows } = await provider.pool.query<{ body: string }>(
      `SELECT body FROM resource_versions WHERE tenant = $1 AND resource_type = 'Observation' AND superseded_at IS NULL AND NOT deleted ORDER BY id LIMIT 30 OFFSET $2`,
      [provider.store.tenant, changes * 30],
    );
    const bodies = rows.map((r) => JSON.parse(r.body) as Record<string, unknown> & { id: string });
    await provider.store.write([
      ...bodies.slice(0, 20).map((b, i) => ({ op: 'put' as const, resource: { ...b, status: 'amended', valueQuantity: { value: changes * 1000 + i } } as never })),
      ...bodies.slice(20).map((b) => ({ op: 'delete' as const, resourceType: 'Observation', id: b.id })),
      ...Array.from({ length: 10 }, (_, i) => ({ op: 'put' as const, resource: { resourceType: 'Observation', id: `loop-${changes}-${i}`, status: 'final', code: { text: `n${i}` } } as never })),
    ]);
  }

  /** A full export of the provider, kicked off through the proxy (so its manifest names the proxy); returns its manifest URL. */
  async function exported(): Promise<string> {
    const kick = await fetch(`${proxy.url}/fhir/$export`, { headers: kickoffHeaders });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    expect(statusUrl.startsWith(proxy.url)).toBe(true);
    await pollUntilDone(statusUrl, 120_000);
    return statusUrl;
  }

  /** The submission's status, as its workflow answers. */
  const status = () => handle().query(submissionStatusQuery);

  /** Waits until the manifest is loaded and the manifest it replaces removed. */
  async function loaded(manifestUrl: string): Promise<void> {
    await until(async () => (await status()).manifests.some((m) => m.url === manifestUrl && (m.state === 'done' || m.state === 'failed')), 'the manifest to load', 240_000);
    const manifest = (await status()).manifests.find((m) => m.url === manifestUrl)!;
    expect([manifest.state, manifest.failure, manifest.files.filter((f) => f.state !== 'done').map((f) => f.failure)]).toEqual(['done', undefined, []]);
  }

  async function expectExactCopy(): Promise<void> {
    const expected = await storeContents(provider.pool, provider.store.tenant);
    const copy = await storeContents(recipientPool, tenant);
    expect([...expected.keys()].filter((k) => !copy.has(k))).toEqual([]);
    expect([...copy.keys()].filter((k) => !expected.has(k))).toEqual([]);
    expect([...copy.entries()].filter(([k, v]) => expected.get(k) !== v).map(([k]) => k)).toEqual([]);
  }

  /** A live worker holding a file's activity now, and those activities; undefined once the manifest loaded without one. */
  async function busyWorker(manifestUrl: string) {
    for (;;) {
      const pending = (await handle().describe()).raw.pendingActivities ?? [];
      for (const worker of topology.workers) {
        const held = pending.filter((a) => (String(a.state) === '2' || String(a.state).includes('STARTED')) && (a.lastWorkerIdentity ?? '').startsWith(`${worker.child.pid}@`));
        if (held.length > 0 && worker.child.exitCode === null) return { worker, activityIds: held.map((a) => a.activityId ?? '') };
      }
      if ((await status()).manifests.find((m) => m.url === manifestUrl)?.state === 'done') return undefined;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** How many activity attempts of the submission were retries so far. */
  async function retries(): Promise<number> {
    const events = (await handle().fetchHistory()).events ?? [];
    return events.filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1).length;
  }

  /** One round: change, export, submit (replacing the last manifest), strike; then an exact copy. */
  async function round(fault: string, strike: (manifestUrl: string) => Promise<(() => Promise<boolean>) | undefined>): Promise<void> {
    await faults.round(fault, async () => {
      let hit = false;
      for (let attempt = 0; attempt < 5 && !hit; attempt++) {
        await topology.heal({ workers: 2, apis: 1 });
        await change();
        const manifestUrl = await exported();
        const res = await submit(topology.apis[0].fhir, { submitter, submissionId: SUBMISSION, manifestUrl, fhirBaseUrl: `${proxy.url}/fhir`, replacesManifestUrl: previous });
        expect(res.status).toBe(200);
        const mattered = await strike(manifestUrl);
        await loaded(manifestUrl);
        hit = mattered !== undefined && (await mattered());
        previous = manifestUrl;
        await expectExactCopy();
      }
      expect(hit).toBe(true);
    });
  }

  beforeAll(async () => {
    // Files of more than one load batch: a drop after the first batch resumes by range.
    provider = await startExportStack({ trustedProxies: ['127.0.0.1/32'], settings: { partitionSize: 5000, maxPartResources: 2500 } });
    await provider.startWorker();
    const resources = [...generatePopulation({ patients: 40, seed: 77 })];
    for (let i = 0; i < resources.length; i += 2000) await provider.store.write(resources.slice(i, i + 2000).map((resource) => ({ op: 'put' as const, resource })));
    proxy = await startDroppingProxy(provider.url, 3);

    postgres = await startPrivatePostgres();
    const databaseUrl = `${postgres.serverUrl}/bulkflow`;
    await ensureDatabase(databaseUrl);
    const submittersFile = path.join(tmp, 'submitters.json');
    writeFileSync(submittersFile, JSON.stringify({ submitters: [{ tenant, ...submitter, allowedUrls: [`${proxy.url}/fhir/`] }] }));
    topology = new Topology({
      temporal: { address: testEnvironment.temporalAddress, namespace: testEnvironment.temporalNamespace },
      databaseUrl,
      tenant,
      patients: 0,
      env: { OUTPUT_DIR: path.join(tmp, 'output'), BULK_SUBMITTERS_FILE: submittersFile, BULK_SUBMIT_PARALLEL_FILES: '2', EXPORT_HEARTBEAT_TIMEOUT_SECONDS: '3' },
    });
    await topology.prepare();
    for (let i = 0; i < 2; i++) await topology.startWorker();
    await topology.startApi();
    recipientPool = createPool(databaseUrl, { max: 2 });
  }, 180_000);

  afterAll(async () => {
    faults.print(`faults while a submission loads (each round an exact copy of the provider); the provider's file server: ${JSON.stringify(proxy?.counts)}`);
    await topology?.stop();
    await recipientPool?.end();
    await proxy?.close();
    await provider?.close();
    postgres?.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it.each(FAULT_ROUNDS)('loads a manifest whose file activity loses its worker to SIGKILL (round %i)', async () => {
    await round('SIGKILL of the worker holding a file activity', async (manifestUrl) => {
      const victim = await busyWorker(manifestUrl);
      if (!victim) return undefined;
      victim.worker.child.kill('SIGKILL');
      // The victim's activity ran again elsewhere: its death mattered.
      return () => topology.ranAgain(`x/${jobId}`, victim.activityIds);
    });
  });

  it.each(FAULT_ROUNDS.slice(0, 1))('loads a manifest while the recipient\'s PostgreSQL is stopped as a crash stops it and started 3 s later (round %i)', async () => {
    await round('recipient PostgreSQL stopped with -m immediate, started 3 s later', async (manifestUrl) => {
      // While the files load, not before.
      await until(async () => (await status()).manifests.find((m) => m.url === manifestUrl)?.files.some((f) => f.state === 'loading') === true, 'the files to load');
      const before = await retries();
      postgres.crash();
      await new Promise((resolve) => setTimeout(resolve, 3000));
      postgres.start();
      return async () => (await retries()) > before;
    });
  });

  it('ends the submission when the provider says it is complete: every manifest in the status manifest, the file server\'s drops resumed by range', async () => {
    expect((await submit(topology.apis[0].fhir, { submitter, submissionId: SUBMISSION, status: 'completed' })).status).toBe(200);
    const { manifest } = await awaitSubmission(topology.apis[0].fhir, submitter, SUBMISSION, 120_000);
    const done = await status();
    expect(manifest.outcome.map((o) => o.manifestUrl)).toEqual(done.manifests.map((m) => m.url));
    expect(done.manifests.slice(0, -1).every((m) => m.state === 'replaced')).toBe(true);
    expect(done.manifests.at(-1)!.state).toBe('done');
    expect(proxy.counts.dropped).toBeGreaterThan(0);
    expect(proxy.counts.ranged).toBeGreaterThan(0);
    await expectExactCopy();
  });
});
