/**
 * Deny by default, walked route by route: every route the app registers (read from its router,
 * so a new route is covered without touching this file), in several letter cases, with and
 * without a trailing slash, duplicated slashes, a tenant prefix or header, for every method,
 * without a token and with a token that grants nothing the route needs. Only the declared
 * public routes answer; everything else is 401, 403, 404 or 405.
 */
import { ADMIN_SCOPE } from '../../src/auth/scopes';
import type { DeclaredRoute } from '../../src/http/access';
import { generatePopulation } from '../../src/generate/population';
import { kickoffHeaders, startExportStack, type ExportStack } from '../support/export-stack';
import { bearer, SmartClients } from '../support/smart-clients';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
const REFUSED = [401, 403, 404, 405];
const TENANT_HEADER = 'X-Tenant';

/** A concrete path for a route pattern: a known type, ids that exist nowhere. */
const concrete = (pattern: string) =>
  pattern
    .replace(':type', 'Patient')
    .replace(':file', 'Patient.ndjson')
    .replace(/:id/g, 'AAAAAAAAAAAAAAAAAAAAAA');

/** The same path as a client might spell it; `exact` variants name the route itself. */
function spellings(path: string, tenant: string): Array<{ path: string; exact: boolean; headers?: Record<string, string> }> {
  const flipFirst = path.replace(/\/([A-Za-z$.])/g, (_m, c: string) => `/${c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()}`);
  const variants = [
    { path, exact: true },
    { path: `${path}/`, exact: true },
    { path: `/t/${tenant}${path}`, exact: true },
    { path: `/t/elsewhere${path}`, exact: true },
    { path, exact: true, headers: { [TENANT_HEADER]: 'elsewhere' } },
    { path: path.toUpperCase(), exact: false },
    { path: path.toLowerCase(), exact: false },
    { path: flipFirst, exact: false },
    { path: `/t/${tenant}${path.toUpperCase()}`, exact: false },
    { path: `/${path}`, exact: false },
    { path: path.replace(/\/([^/]*)$/, '//$1'), exact: false },
  ];
  return variants.filter((v) => v.exact || v.path !== path);
}

/** A well-formed body for what the path is, so a refusal is the access check and not a parse error. */
function bodyFor(path: string): string {
  if (path.includes('$export')) return JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: '_type', valueString: 'Patient' }] });
  if (/\/fhir\/?$/.test(path)) {
    return JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'PUT', url: 'Patient/walked' }, resource: { resourceType: 'Patient', id: 'walked' } }] });
  }
  if (path.startsWith('/codec/')) return JSON.stringify({ payloads: [] });
  if (path.includes('/admin/schedules')) return JSON.stringify({ id: 'walked', cron: '0 3 * * *', export: { level: 'system' } });
  return JSON.stringify({ resourceType: 'Patient', id: 'AAAAAAAAAAAAAAAAAAAAAA' });
}

describe('route access: every registered route, deny by default', () => {
  let stack: ExportStack;
  let unscopedToken: string;
  let routes: DeclaredRoute[];

  beforeAll(async () => {
    stack = await startExportStack({ auth: true, tenantHeader: TENANT_HEADER });
    await stack.store.write([...generatePopulation({ patients: 2, seed: 4 })].map((resource) => ({ op: 'put' as const, resource })));
    const smart = new SmartClients(stack);
    // A valid token of this tenant that grants nothing any route here needs for Patient data.
    unscopedToken = await smart.tokenFor(await smart.register('walker', 'ES384', ['system/Device.c']), 'system/Device.c');
    routes = stack.routes;
  });
  afterAll(() => stack.close());

  const publicRoute = (method: string, path: string) => routes.some((r) => r.access === 'public' && r.methods.includes(method) && concrete(r.path) === path);

  async function walk(headers: Record<string, string>): Promise<string[]> {
    const wrong: string[] = [];
    const requests = routes.flatMap((route) =>
      spellings(concrete(route.path), stack.store.tenant).flatMap((variant) => METHODS.map((method) => ({ route, variant, method }))),
    );
    for (let i = 0; i < requests.length; i += 16) {
      await Promise.all(
        requests.slice(i, i + 16).map(async ({ route, variant, method }) => {
          const res = await fetch(`${stack.url}${variant.path}`, {
            method,
            headers: { ...kickoffHeaders, 'Content-Type': route.path.includes('/auth/token') ? 'application/x-www-form-urlencoded' : 'application/fhir+json', ...variant.headers, ...headers },
            body: method === 'POST' || method === 'PUT' || method === 'PATCH' ? bodyFor(variant.path) : undefined,
          });
          const body = await res.text();
          const open = variant.exact && publicRoute(method, concrete(route.path)); // discovery is public in every tenant
          const line = `${method} ${variant.path}${variant.headers ? ' (tenant header)' : ''} -> ${res.status}`;
          // The route that matched says whether a cache may keep its answer, refusals included.
          if (variant.exact && route.methods.includes(method) && route.cache === 'no-store' && res.headers.get('cache-control') !== 'no-store') {
            wrong.push(`${line}: Cache-Control ${res.headers.get('cache-control')}, not no-store`);
          }
          if (open) {
            if (res.status === 401 || res.status === 403) wrong.push(`${line}: a public route refused`);
          } else if (!REFUSED.includes(res.status)) {
            wrong.push(`${line}: ${body.slice(0, 160)}`);
          } else if (method !== 'HEAD' && !body.includes('"resourceType":"OperationOutcome"')) {
            wrong.push(`${line}: the refusal is not an OperationOutcome`);
          }
        }),
      );
    }
    return wrong;
  }

  it('reads every route with its declared access from the router, public ones being discovery GETs and the token endpoint', () => {
    const publicOnes = routes.filter((r) => r.access === 'public').map((r) => `${r.methods.join(',')} ${r.path}`);
    expect(publicOnes.sort()).toEqual(
      ['HEAD,GET /fhir/.well-known/smart-configuration', 'HEAD,GET /fhir/OperationDefinition/:id', 'HEAD,GET /fhir/metadata', 'POST /auth/token', 'HEAD,GET /healthz', 'HEAD,GET /readyz', 'OPTIONS /codec/decode', 'OPTIONS /codec/encode'].sort(),
    );
    expect(routes.filter((r) => r.access === 'admin').every((r) => r.path.startsWith('/admin/') || r.path.startsWith('/codec/'))).toBe(true);
    expect(routes.length).toBeGreaterThan(25);
  });

  it('declares every route that serves caller-specific data, or a credential, no-store', () => {
    const cacheable = routes.filter((r) => r.cache !== 'no-store').map((r) => `${r.methods.join(',')} ${r.path}`);
    expect(cacheable.sort()).toEqual(['HEAD,GET /fhir/.well-known/smart-configuration', 'HEAD,GET /fhir/OperationDefinition/:id', 'HEAD,GET /fhir/metadata', 'HEAD,GET /healthz', 'HEAD,GET /readyz', 'OPTIONS /codec/decode', 'OPTIONS /codec/encode'].sort());
    expect(routes.filter((r) => r.access !== 'public').every((r) => r.cache === 'no-store')).toBe(true);
  });

  it('answers every caller-specific route no-store for a caller it serves, whatever the route answers', async () => {
    const smart = new SmartClients(stack);
    const everything = ['system/*.cruds', ADMIN_SCOPE];
    const full = await smart.tokenFor(await smart.register('walker-all', 'ES384', everything), everything.join(' '));
    const wrong: string[] = [];
    for (const route of routes.filter((r) => r.cache === 'no-store')) {
      for (const method of route.methods.filter((m) => m !== 'HEAD')) {
        const path = concrete(route.path);
        const res = await fetch(`${stack.url}${path}`, {
          method,
          redirect: 'manual',
          headers: { ...kickoffHeaders, 'Content-Type': path.includes('/auth/token') ? 'application/x-www-form-urlencoded' : 'application/fhir+json', ...bearer(full) },
          body: method === 'POST' || method === 'PUT' || method === 'PATCH' ? bodyFor(path) : undefined,
        });
        await res.arrayBuffer();
        if (res.status >= 500) wrong.push(`${method} ${path} -> ${res.status}`);
        if (res.headers.get('cache-control') !== 'no-store') wrong.push(`${method} ${path} -> ${res.status}: Cache-Control ${res.headers.get('cache-control')}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('refuses every non-public route, however it is spelled, without a token', async () => {
    expect(await walk({})).toEqual([]);
  });

  it('refuses every non-public route, however it is spelled, with a token that grants nothing it needs', async () => {
    expect(await walk(bearer(unscopedToken))).toEqual([]);
  });

  it('keeps discovery public for GET and HEAD only: writes to discovery paths need a token', async () => {
    const definition = { resourceType: 'OperationDefinition', id: 'pwn', status: 'active', kind: 'operation', name: 'x', code: 'x', system: true, type: false, instance: false };
    for (const method of ['PUT', 'DELETE']) {
      const res = await fetch(`${stack.fhir}/OperationDefinition/pwn`, { method, headers: { 'Content-Type': 'application/fhir+json' }, body: method === 'PUT' ? JSON.stringify(definition) : undefined });
      expect(res.status).toBe(401);
    }
    expect((await fetch(`${stack.fhir}/metadata`)).status).toBe(200);
    expect((await fetch(`${stack.fhir}/metadata`, { method: 'HEAD' })).status).toBe(200);
    expect(await stack.store.read('OperationDefinition', 'pwn')).toBeUndefined();
  });

  it('protects the bare base: a transaction sent to [base] without a token writes nothing', async () => {
    for (const base of [stack.fhir, `${stack.fhir}/`, `${stack.url}/t/${stack.store.tenant}/fhir`]) {
      const res = await fetch(base, { method: 'POST', headers: { 'Content-Type': 'application/fhir+json' }, body: bodyFor('/fhir') });
      expect(res.status).toBe(401);
    }
    expect(await stack.store.read('Patient', 'walked')).toBeUndefined();
  });

  it('refuses an admin route to a tenant header or prefix: an admin token is the only way in', async () => {
    for (const path of ['/admin/schedules', '/ADMIN/schedules', `/t/${stack.store.tenant}/admin/schedules`, '/t/elsewhere/admin/schedules']) {
      const res = await fetch(`${stack.url}${path}`, { headers: { ...bearer(unscopedToken), [TENANT_HEADER]: stack.store.tenant } });
      expect([403, 404]).toContain(res.status);
    }
    const smart = new SmartClients(stack);
    const admin = await smart.tokenFor(await smart.register('walker-admin', 'ES384', [ADMIN_SCOPE]), ADMIN_SCOPE);
    expect((await fetch(`${stack.url}/admin/schedules`, { headers: bearer(admin) })).status).toBe(200);
  });
});
