/**
 * Health data never sits in Temporal in clear: read back raw from the Temporal server (no codec),
 * the histories, memos, search attributes and Web UI texts of a Patient-level export with listed
 * patients and a `_typeFilter`, and of an async search, hold no patient id, no query text and no
 * resource content; the same payloads decoded with the key hold them (so the scan can see them).
 * The codec server shows them to an operator only. Exports started in clear still complete.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { generatePopulation } from '../../src/generate/population';
import { ADMIN_SCOPE } from '../../src/auth/scopes';
import { encryptingDataConverter } from '../../src/temporal/data-converter';
import { EncryptionCodec, ENCRYPTED_ENCODING } from '../../src/temporal/payload-codec';
import { statusQuery } from '../../workflows/bulk-export';
import { testEnvironment } from '../harness/environment';
import { kickoffHeaders, kickOff, startExportStack, type ExportStack } from '../support/export-stack';
import { bearer, SmartClients } from '../support/smart-clients';
import { waitFor } from '../support/wait';

type Json = { resourceType: string; id: string; name?: Array<{ family: string }> };

/** Every string and every byte string (as text) anywhere in a protobuf object. */
function texts(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('latin1'));
  else if (Array.isArray(value)) for (const item of value) texts(item, out);
  else if (value && typeof value === 'object') for (const item of Object.values(value)) texts(item, out);
  return out;
}

/** Every payload (an object with data and metadata) anywhere in a protobuf object. */
function payloadsIn(value: unknown, out: Payload[] = []): Payload[] {
  if (Array.isArray(value)) for (const item of value) payloadsIn(item, out);
  else if (value && typeof value === 'object' && !(value instanceof Uint8Array)) {
    const candidate = value as { data?: unknown; metadata?: unknown };
    if (candidate.data instanceof Uint8Array && candidate.metadata && typeof candidate.metadata === 'object') out.push(value as Payload);
    else for (const item of Object.values(value)) payloadsIn(item, out);
  }
  return out;
}

describe('payload encryption', () => {
  let stack: ExportStack;
  let admin: Record<string, string>;
  let reader: Record<string, string>;
  const resources = [...generatePopulation({ patients: 5, seed: 302 })] as Json[];
  const patients = resources.filter((r) => r.resourceType === 'Patient');
  const chosen = patients.slice(0, 2);
  const family = chosen[0].name![0].family;
  const typeFilter = `Patient?family=${family}`;

  beforeAll(async () => {
    stack = await startExportStack({ auth: true, asyncSyncWaitMs: 0, codecCorsOrigins: ['http://ui.example:8233'] });
    await stack.store.write(resources.map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker();
    const smart = new SmartClients(stack);
    admin = bearer(await smart.tokenFor(await smart.register('operator', 'ES384', [ADMIN_SCOPE, 'system/*.rs']), `${ADMIN_SCOPE} system/*.rs`));
    reader = bearer(await smart.tokenFor(await smart.register('reader', 'ES384', ['system/*.rs']), 'system/*.rs'));
  });
  afterAll(() => stack.close());

  /** The workflow's raw history and description, as the Temporal server stores and shows them. */
  async function rawRecords(workflowId: string): Promise<unknown[]> {
    const service = stack.client.connection.workflowService;
    const namespace = testEnvironment.temporalNamespace;
    const history = await service.getWorkflowExecutionHistory({ namespace, execution: { workflowId } });
    const description = await service.describeWorkflowExecution({ namespace, execution: { workflowId } });
    return [history, description];
  }

  it('keeps patient ids, _typeFilter text and resource content out of histories, memos, search attributes and summaries', async () => {
    const kick = await fetch(`${stack.fhir}/Patient/$export`, {
      method: 'POST',
      headers: { ...kickoffHeaders, ...admin, 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify({
        resourceType: 'Parameters',
        parameter: [
          ...chosen.map((p) => ({ name: 'patient', valueReference: { reference: `Patient/${p.id}` } })),
          { name: '_type', valueString: 'Patient,Observation' },
          { name: '_typeFilter', valueString: typeFilter },
        ],
      }),
    });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    const exportDone = await fetch(statusUrl, { headers: admin }).then(async function poll(res): Promise<Response> {
      if (res.status !== 202) return res;
      await new Promise((resolve) => setTimeout(resolve, 200));
      return poll(await fetch(statusUrl, { headers: admin }));
    });
    expect(exportDone.status).toBe(200);
    const manifest = (await exportDone.json()) as { output: Array<{ type: string; url: string }> };
    const patientFile = await (await fetch(manifest.output.find((o) => o.type === 'Patient')!.url, { headers: admin })).text();
    expect(patientFile).toContain(chosen[0].id); // the export did select and write the patient

    const search = await fetch(`${stack.fhir}/Patient?family=${family}`, { headers: { Prefer: 'respond-async', ...admin } });
    const searchUrl = search.headers.get('content-location')!;
    await waitFor(async () => (await fetch(searchUrl, { headers: admin, redirect: 'manual' })).status === 303, 30_000, 'the async search');

    for (const workflowId of [statusUrl, searchUrl].map((u) => u.split('/').pop()!)) {
      const records = await rawRecords(workflowId);
      const raw = texts(records).join('\n');
      for (const secret of [...chosen.map((p) => p.id), family, typeFilter, encodeURIComponent(typeFilter)]) {
        expect({ workflowId, found: raw.includes(secret) ? secret : undefined }).toEqual({ workflowId, found: undefined });
      }
      // The scan did reach the payloads: decoded with the key, they hold what the raw ones hide.
      const payloads = payloadsIn(records);
      expect(payloads.filter((p) => Buffer.from(p.metadata!.encoding!).toString() === ENCRYPTED_ENCODING).length).toBeGreaterThan(3);
      const decoded = texts(await new EncryptionCodec(stack.payloadKeys).decode(payloads)).join('\n');
      expect(decoded).toContain(family);
    }
  });

  it('decodes payloads through the codec server for an operator only', async () => {
    const statusUrl = await kickOff(stack, '?_type=Patient', { ...kickoffHeaders, ...admin });
    await waitFor(async () => (await fetch(statusUrl, { headers: admin })).status === 200, 30_000, 'the export');
    const workflowId = statusUrl.split('/').pop()!;
    const [history] = (await rawRecords(workflowId)) as [{ history: unknown }];
    const encrypted = payloadsIn(history).filter((p) => Buffer.from(p.metadata!.encoding!).toString() === ENCRYPTED_ENCODING);
    const body = JSON.stringify({
      payloads: encrypted.map((p) => ({
        metadata: Object.fromEntries(Object.entries(p.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
        data: Buffer.from(p.data!).toString('base64'),
      })),
    });
    const ask = (headers: Record<string, string>) => fetch(`${stack.url}/codec/decode`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', ...headers }, body });

    expect((await ask({})).status).toBe(401);
    expect((await ask(reader)).status).toBe(403);
    const answer = await ask({ ...admin, Origin: 'http://ui.example:8233' });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('access-control-allow-origin')).toBe('http://ui.example:8233');
    expect(answer.headers.get('cache-control')).toBe('no-store');
    const decoded = ((await answer.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> }).payloads;
    expect(decoded).toHaveLength(encrypted.length);
    expect(decoded.every((p) => Buffer.from(p.metadata.encoding, 'base64').toString() !== ENCRYPTED_ENCODING)).toBe(true);
    expect(decoded.map((p) => Buffer.from(p.data, 'base64').toString()).join('\n')).toContain(workflowId); // the input names its export

    const preflight = await fetch(`${stack.url}/codec/decode`, { method: 'OPTIONS', headers: { Origin: 'http://ui.example:8233', 'Access-Control-Request-Method': 'POST' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('Authorization');
    const stranger = await fetch(`${stack.url}/codec/decode`, { method: 'OPTIONS', headers: { Origin: 'http://evil.example' } });
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('an export started before payload encryption', () => {
  let stack: ExportStack;
  const resources = [...generatePopulation({ patients: 3, seed: 303 })] as Json[];
  const count = (type: string) => resources.filter((r) => r.resourceType === type).length;

  beforeAll(async () => {
    stack = await startExportStack({ unencryptedClient: true, auth: false });
    await stack.store.write(resources.map((resource) => ({ op: 'put' as const, resource })));
  });
  afterAll(() => stack.close());

  it('completes on an encrypting worker: the history holds plain events, then encrypted ones', async () => {
    // The old release's worker plans and exports Patient, but cannot finish Encounter.
    const old = await stack.startWorker(
      (real) => ({
        ...real,
        exportPartition: async (input) => {
          if (input.partition.type === 'Encounter') throw ApplicationFailure.retryable('the old worker leaves Encounter to the new one (test)');
          return real.exportPartition(input);
        },
      }),
      { unencrypted: true },
    );
    const statusUrl = await kickOff(stack, '?_type=Patient,Encounter');
    const workflowId = statusUrl.split('/').pop()!;
    const reader = new Client({ connection: stack.client.connection, namespace: testEnvironment.temporalNamespace, dataConverter: encryptingDataConverter(stack.payloadKeys) });
    const handle = reader.workflow.getHandle(workflowId);
    await waitFor(async () => (await handle.query(statusQuery)).types.Patient?.exported === count('Patient'), 30_000, 'Patient exported by the old worker');
    await old.stop();

    await stack.startWorker();
    await waitFor(async () => (await handle.query(statusQuery)).phase === 'completed', 60_000, 'the export to complete on the new worker');
    const status = await handle.query(statusQuery);
    expect(status.types).toEqual({ Patient: { total: count('Patient'), exported: count('Patient') }, Encounter: { total: count('Encounter'), exported: count('Encounter') } });

    const events = (await handle.fetchHistory()).events ?? [];
    const encodings = payloadsIn(events).map((p) => Buffer.from(p.metadata!.encoding!).toString());
    expect(encodings).toContain('json/plain');
    expect(encodings).toContain(ENCRYPTED_ENCODING);
  });
});
