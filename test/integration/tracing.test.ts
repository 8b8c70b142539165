/**
 * OpenTelemetry: a `serve` and a `worker` process export their spans over OTLP/HTTP (configured
 * by OTEL_* only) to a receiver in this test. One export's trace runs from the kick-off request
 * through the workflow start and run into each activity, and the activities' PostgreSQL queries
 * and GCS (fake-gcs-server) calls are inside them. OTEL_TRACES_EXPORTER=none turns it off.
 */
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findFreePort } from '../../src/process/free-port';
import { testEnvironment } from '../harness/environment';
import { uniqueTenant } from '../support/database';
import { kickoffHeaders, pollUntilDone } from '../support/export-stack';
import { Topology, until } from '../support/topology';

jest.setTimeout(180_000);

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  service: string;
  attributes: Record<string, unknown>;
}

/** An OTLP/HTTP (JSON) trace receiver: every span posted to /v1/traces, with its service. */
async function startReceiver() {
  const spans: ReceivedSpan[] = [];
  const posts: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      posts.push(req.url ?? '');
      type Attr = { key: string; value: Record<string, unknown> };
      const value = (a: Attr) => Object.values(a.value)[0];
      const payload = JSON.parse(body || '{}') as {
        resourceSpans?: Array<{ resource: { attributes: Attr[] }; scopeSpans: Array<{ spans: Array<Omit<ReceivedSpan, 'service' | 'attributes'> & { attributes?: Attr[] }> }> }>;
      };
      for (const rs of payload.resourceSpans ?? []) {
        const service = String(value(rs.resource.attributes.find((a) => a.key === 'service.name')!));
        for (const scope of rs.scopeSpans) {
          for (const span of scope.spans) spans.push({ ...span, service, attributes: Object.fromEntries((span.attributes ?? []).map((a) => [a.key, value(a)])) });
        }
      }
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    });
  });
  const port = await findFreePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${port}`, spans, posts, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('traces of an export', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let topology: Topology;
  const outputDir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-tracing-'));

  beforeAll(async () => {
    receiver = await startReceiver();
    topology = new Topology({
      temporal: { address: testEnvironment.temporalAddress, namespace: testEnvironment.temporalNamespace },
      databaseUrl: testEnvironment.databaseUrl,
      tenant: uniqueTenant('tracing'),
      patients: 3,
      env: { OUTPUT_BACKEND: 'gcs', GCS_BUCKET: testEnvironment.gcsBucket, STORAGE_EMULATOR_HOST: testEnvironment.gcsEndpoint, OUTPUT_DIR: outputDir },
    });
    await topology.prepare();
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '200' };
    await topology.startWorker({ ...otel, OTEL_SERVICE_NAME: 'bulkflow-worker' });
    await topology.startApi(0, { ...otel, OTEL_SERVICE_NAME: 'bulkflow-api' });
    await topology.startApi(1, { ...otel, OTEL_SERVICE_NAME: 'bulkflow-off', OTEL_TRACES_EXPORTER: 'none' });
  }, 120_000);
  afterAll(async () => {
    await topology?.stop();
    await receiver?.close();
    rmSync(outputDir, { recursive: true, force: true });
  });

  it('runs one trace from the kick-off request through the workflow into each activity and its PostgreSQL and GCS calls', async () => {
    const kick = await fetch(`${topology.apis[0].fhir}/$export?_type=Patient,Observation`, { headers: kickoffHeaders });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers.get('content-location')!;
    await pollUntilDone(statusUrl, 120_000);
    const exportId = statusUrl.split('/').pop()!;

    const byId = () => new Map(receiver.spans.map((s) => [s.spanId, s]));
    const kickoffSpan = () => receiver.spans.find((s) => s.service === 'bulkflow-api' && !s.parentSpanId && /\$export/.test(String(s.attributes['http.target'] ?? s.attributes['url.path'] ?? s.name)));
    const inTrace = () => receiver.spans.filter((s) => s.traceId === kickoffSpan()?.traceId);
    const named = (prefix: string) => inTrace().filter((s) => s.name.startsWith(prefix));
    // The workflow's own span ends when the workflow does: after retention, or at a DELETE.
    expect((await fetch(statusUrl, { method: 'DELETE' })).status).toBe(202);
    // Spans arrive in batches from both processes.
    await until(() => named('RunActivity:exportPartition').length >= 2 && named('RunWorkflow:bulkExport').length === 1, `the export's spans (received ${receiver.spans.length})`, 30_000);

    const spans = byId();
    /** The names from a span up to its trace's root. */
    const ancestry = (span: ReceivedSpan) => {
      const names: string[] = [];
      for (let at: ReceivedSpan | undefined = span; at; at = at.parentSpanId ? spans.get(at.parentSpanId) : undefined) names.push(at.name);
      return names;
    };
    const root = kickoffSpan()!;
    const [start] = named('StartWorkflow:bulkExport');
    expect(start.service).toBe('bulkflow-api');
    expect(ancestry(start).at(-1)).toBe(root.name);
    const [run] = named('RunWorkflow:bulkExport');
    expect(run.service).toBe('bulkflow-worker');
    expect(run.parentSpanId).toBe(start.spanId);
    expect(inTrace().some((s) => s.attributes.workflowId === exportId || JSON.stringify(s.attributes).includes(exportId))).toBe(true);

    for (const activity of [...named('RunActivity:planExport'), ...named('RunActivity:exportPartition')]) {
      // Each activity attempt sits under the workflow run that scheduled it.
      expect(ancestry(activity)).toContain(run.name);
      expect(ancestry(activity).at(-1)).toBe(root.name);
    }
    const under = (activity: ReceivedSpan, test: (s: ReceivedSpan) => boolean) => inTrace().filter((s) => test(s) && ancestry(s).includes(activity.name) && isDescendant(s, activity));
    const isDescendant = (span: ReceivedSpan, of: ReceivedSpan) => {
      for (let at: ReceivedSpan | undefined = span; at; at = at.parentSpanId ? spans.get(at.parentSpanId) : undefined) if (at.spanId === of.spanId) return true;
      return false;
    };
    const [plan] = named('RunActivity:planExport');
    expect(under(plan, (s) => s.attributes['db.system'] === 'postgresql').length).toBeGreaterThan(0);
    for (const partition of named('RunActivity:exportPartition')) {
      expect(under(partition, (s) => s.attributes['db.system'] === 'postgresql').length).toBeGreaterThan(0);
      // Its part files go to GCS: HTTP client spans to the emulator.
      const gcsCalls = under(partition, (s) => String(s.attributes['http.url'] ?? s.attributes['url.full'] ?? '').startsWith(testEnvironment.gcsEndpoint));
      expect(gcsCalls.length).toBeGreaterThan(0);
    }
  });

  it('sends nothing from a process told OTEL_TRACES_EXPORTER=none', async () => {
    expect((await fetch(`${topology.apis[1].fhir}/metadata`)).status).toBe(200);
    expect((await fetch(`${topology.apis[0].fhir}/metadata`)).status).toBe(200);
    // The traced API's request arrives; the other's never does.
    await until(() => receiver.spans.some((s) => s.service === 'bulkflow-api' && String(s.attributes['http.target'] ?? '').endsWith('/metadata')), 'the traced request', 10_000);
    expect(receiver.spans.filter((s) => s.service === 'bulkflow-off')).toEqual([]);
  });
});
