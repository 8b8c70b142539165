/**
 * What a client's headers can change, tried as an attacker would with authorization on: forwarded
 * headers move no URL unless they come from a configured proxy, and nothing that depends on the
 * caller's token (or is a credential) may be kept by a shared cache.
 */
import http from 'node:http';
import { generatePopulation } from '../../src/generate/population';
import { kickoffHeaders, startExportStack, type ExportStack } from '../support/export-stack';
import { bearer, SmartClients } from '../support/smart-clients';

const FORGED = {
  'X-Forwarded-Host': 'evil.example',
  'X-Forwarded-Proto': 'https',
  'X-Forwarded-For': '198.51.100.66',
  Forwarded: 'for=198.51.100.66;host=evil.example;proto=https',
};
const PROXY_ADDRESS = '127.0.0.2'; // loopback too, so one machine plays client and proxy

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request from a chosen local address (fetch cannot pick its source address). */
function send(url: string, options: { method?: string; headers?: Record<string, string>; body?: string; from?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, localAddress: options.from ?? '127.0.0.1' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

async function until(check: () => Promise<Answer>, done: (answer: Answer) => boolean, timeoutMs = 60_000): Promise<Answer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await check();
    if (done(answer) || Date.now() > deadline) return answer;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Every absolute URL in a text (headers or body). */
const urlsIn = (text: string) => [...text.matchAll(/https?:\/\/[^\s"',]+/g)].map((m) => m[0]);

async function tokenHeaders(stack: ExportStack, scopes: string[], id: string): Promise<Record<string, string>> {
  const smart = new SmartClients(stack);
  const token = await smart.tokenFor(await smart.register(id, 'ES384', scopes), scopes.join(' '));
  return bearer(token);
}

describe('with the default configuration, no client header moves a URL', () => {
  let stack: ExportStack;
  let auth: Record<string, string>;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));

  beforeAll(async () => {
    stack = await startExportStack({ auth: true, asyncSyncWaitMs: 0 });
    await stack.store.write([...generatePopulation({ patients: 3, seed: 36 })].map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker((real) => ({
      ...real,
      // Encounter exports wait for the test, so a status poll surely meets a running export.
      exportPartition: async (input) => {
        if (input.partition.type === 'Encounter') await gate;
        return real.exportPartition(input);
      },
    }));
    auth = await tokenHeaders(stack, ['system/*.rs'], 'headers-default');
  });
  afterAll(() => release());
  afterAll(() => stack.close());

  it('hands out status, manifest and file URLs on BASE_URL, and every such answer is no-store', async () => {
    const kick = await send(`${stack.fhir}/$export?_type=Patient`, { headers: { ...kickoffHeaders, ...auth, ...FORGED } });
    expect(kick.status).toBe(202);
    expect(kick.headers['content-location']).toMatch(new RegExp(`^${stack.fhir}/bulkstatus/[A-Za-z0-9_-]{22}$`));
    expect(kick.headers['cache-control']).toBe('no-store');

    const done = await until(() => send(kick.headers['content-location'] as string, { headers: { ...auth, ...FORGED } }), (a) => a.status !== 202);
    expect(done.status).toBe(200);
    expect(done.headers['cache-control']).toBe('no-store');
    const manifest = JSON.parse(done.body) as { request: string; output: Array<{ url: string; count: number }> };
    expect(manifest.output).toHaveLength(1);
    expect(manifest.request).toBe(`${stack.fhir}/$export?_type=Patient`);
    const urls = urlsIn(done.body);
    expect(urls.length).toBeGreaterThan(1);
    for (const url of urls) expect(url.startsWith(stack.fhir)).toBe(true);

    const file = await send(manifest.output[0].url, { headers: { ...auth, ...FORGED } });
    expect(file.status).toBe(200);
    expect(file.body.trim().split('\n')).toHaveLength(3);
    expect(file.headers['cache-control']).toBe('no-store');
  });

  it('answers a running export 202 with no-store', async () => {
    const kick = await send(`${stack.fhir}/$export?_type=Encounter`, { headers: { ...kickoffHeaders, ...auth } });
    const running = await send(kick.headers['content-location'] as string, { headers: { ...auth, ...FORGED } });
    expect(running.status).toBe(202);
    expect(running.headers['cache-control']).toBe('no-store');
    release();
  });

  it('runs a respond-async search whose status and result URLs are on BASE_URL, and no-store', async () => {
    const kick = await send(`${stack.fhir}/Patient?_count=2`, { headers: { Prefer: 'respond-async', ...auth, ...FORGED } });
    expect(kick.status).toBe(202);
    const statusUrl = kick.headers['content-location'] as string;
    expect(statusUrl).toMatch(new RegExp(`^${stack.fhir}/async/[A-Za-z0-9_-]{22}$`));
    const done = await until(() => send(statusUrl, { headers: { ...auth, ...FORGED } }), (a) => a.status !== 202);
    expect(done.headers['cache-control']).toBe('no-store');
    expect(done.status).toBe(303);
    expect(done.headers.location).toBe(`${statusUrl}/result`);
    const result = await send(done.headers.location!, { headers: { ...auth, ...FORGED } });
    expect(result.status).toBe(200);
    expect(result.headers['cache-control']).toBe('no-store');
    const bundle = JSON.parse(result.body) as { entry: Array<{ resource: { entry: Array<{ fullUrl: string }>; link: Array<{ url: string }> } }> };
    const searchset = bundle.entry[0].resource;
    expect(searchset.entry).toHaveLength(2);
    for (const url of [...searchset.entry.map((e) => e.fullUrl), ...searchset.link.map((l) => l.url)]) expect(url.startsWith(stack.fhir)).toBe(true);
    expect(result.body).not.toContain('evil.example');
  });

  it('names the configured token endpoint in discovery and the CapabilityStatement', async () => {
    const discovery = JSON.parse((await send(`${stack.fhir}/.well-known/smart-configuration`, { headers: FORGED })).body) as { token_endpoint: string };
    expect(discovery.token_endpoint).toBe(`${stack.url}/auth/token`);
    const metadata = await send(`${stack.fhir}/metadata`, { headers: FORGED });
    expect(metadata.status).toBe(200);
    expect(metadata.body).not.toContain('evil.example');
    expect(metadata.body).toContain(`${stack.url}/auth/token`);
  });

  it('answers the token endpoint no-store, granted or refused', async () => {
    const smart = new SmartClients(stack);
    const client = await smart.register('headers-token', 'ES384', ['system/*.rs']);
    const granted = await smart.requestToken(await smart.tokenRequest(client, 'system/*.rs'), FORGED);
    expect(granted.status).toBe(200);
    expect(((await granted.json()) as { access_token: string }).access_token).toMatch(/^ey/);
    expect(granted.headers.get('cache-control')).toBe('no-store');
    expect(granted.headers.get('pragma')).toBe('no-cache');
    const refused = await smart.requestToken({ grant_type: 'password' });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('cache-control')).toBe('no-store');
  });
});

describe('behind a configured proxy', () => {
  let stack: ExportStack;
  let auth: Record<string, string>;
  const proxied = { 'X-Forwarded-Host': 'bulk.example.org', 'X-Forwarded-Proto': 'https' };

  beforeAll(async () => {
    stack = await startExportStack({ auth: true, trustedProxies: [`${PROXY_ADDRESS}/32`] });
    await stack.store.write([...generatePopulation({ patients: 2, seed: 37 })].map((resource) => ({ op: 'put' as const, resource })));
    await stack.startWorker();
    auth = await tokenHeaders(stack, ['system/*.rs'], 'headers-proxied');
  });
  afterAll(() => stack.close());

  it("builds URLs from the proxy's forwarded headers, and from BASE_URL for the same headers sent by anyone else", async () => {
    const viaProxy = await send(`${stack.fhir}/$export?_type=Patient`, { headers: { ...kickoffHeaders, ...auth, ...proxied }, from: PROXY_ADDRESS });
    expect(viaProxy.status).toBe(202);
    const statusUrl = viaProxy.headers['content-location'] as string;
    expect(statusUrl).toMatch(/^https:\/\/bulk\.example\.org\/fhir\/bulkstatus\/[A-Za-z0-9_-]{22}$/);
    expect(viaProxy.headers.vary).toContain('X-Forwarded-Host');
    const local = statusUrl.replace('https://bulk.example.org', stack.url);

    const direct = await send(`${stack.fhir}/$export?_type=Patient`, { headers: { ...kickoffHeaders, ...auth, ...proxied } });
    expect(direct.headers['content-location']).toMatch(new RegExp(`^${stack.fhir}/bulkstatus/`));

    const throughProxy = await until(() => send(local, { headers: { ...auth, Forwarded: 'for=203.0.113.9;proto=https;host=files.example.org' }, from: PROXY_ADDRESS }), (a) => a.status !== 202);
    const manifest = JSON.parse(throughProxy.body) as { request: string; output: Array<{ url: string }> };
    expect(manifest.output[0].url).toMatch(/^https:\/\/files\.example\.org\/fhir\/bulkfiles\//);
    expect(manifest.request).toBe('https://bulk.example.org/fhir/$export?_type=Patient');

    const fromClient = JSON.parse((await send(local, { headers: { ...auth, Forwarded: 'host=files.example.org;proto=https' } })).body) as typeof manifest;
    expect(fromClient.output[0].url.startsWith(`${stack.fhir}/bulkfiles/`)).toBe(true);

    // An injected host from the proxy's own request is ignored, never echoed.
    const injected = JSON.parse((await send(local, { headers: { ...auth, 'X-Forwarded-Host': 'evil.example/@x' }, from: PROXY_ADDRESS })).body) as typeof manifest;
    expect(injected.output[0].url.startsWith(`${stack.fhir}/bulkfiles/`)).toBe(true);
  });

  it('points discovery at the token endpoint under the origin the proxy names, only for the proxy', async () => {
    const viaProxy = JSON.parse((await send(`${stack.fhir}/.well-known/smart-configuration`, { headers: proxied, from: PROXY_ADDRESS })).body) as { token_endpoint: string };
    expect(viaProxy.token_endpoint).toBe('https://bulk.example.org/auth/token');
    const direct = JSON.parse((await send(`${stack.fhir}/.well-known/smart-configuration`, { headers: proxied })).body) as { token_endpoint: string };
    expect(direct.token_endpoint).toBe(`${stack.url}/auth/token`);
  });
});
