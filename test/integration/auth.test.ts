/**
 * SMART Backend Services on the real stack: the built-in token endpoint (and every refusal),
 * protected kick-off, status, cancel and download, scopes per type, owner-only jobs.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { AccessTokens } from '../../src/auth/access-tokens';
import { ADMIN_SCOPE } from '../../src/auth/scopes';
import { loadSigningKey } from '../../src/auth/signing-key';
import { generatePopulation } from '../../src/generate/population';
import { bearer, SmartClients, type AssertionClaims, type SmartClient } from '../support/smart-clients';
import { kickoffHeaders, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';

describe('SMART Backend Services authorization', () => {
  let stack: ExportStack;
  let smart: SmartClients;
  let tokenUrl: string;
  const clients: Record<string, SmartClient> = {};

  async function register(id: string, alg: SmartClient['alg'], scopes: string[], tenant = stack.store.tenant): Promise<SmartClient> {
    return (clients[id] = await smart.register(id, alg, scopes, tenant));
  }
  const assertion = (client: SmartClient, claims: AssertionClaims = {}, key = client.privateKey) => smart.assertion(client, claims, key);
  const requestToken = (fields: Record<string, string>) => smart.requestToken(fields);
  const tokenRequest = (client: SmartClient, scope: string, claims: AssertionClaims = {}) => smart.tokenRequest(client, scope, claims);
  const tokenFor = (client: SmartClient, scope: string) => smart.tokenFor(client, scope);
  const requestFields = (client: SmartClient, claims: AssertionClaims) => tokenRequest(client, 'system/*.rs', claims);

  beforeAll(async () => {
    stack = await startExportStack({ auth: true });
    smart = new SmartClients(stack);
    tokenUrl = smart.tokenUrl;
    await stack.store.write([...generatePopulation({ patients: 2, seed: 9 })].map((resource) => ({ op: 'put' as const, resource })));
    await register('analytics', 'ES384', ['system/*.rs']);
    await register('patients-only', 'RS384', ['system/Patient.read']);
    await register('operator', 'ES384', ['system/*.read', ADMIN_SCOPE]);
    await stack.startWorker();
  });
  afterAll(() => stack.close());

  describe('token endpoint', () => {
    it('issues a bearer token for an ES384 or RS384 assertion, with the granted subset of the requested scopes', async () => {
      const res = await requestToken(await tokenRequest(clients.analytics, 'system/Observation.rs system/Patient.cruds'));
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = (await res.json()) as { access_token: string; token_type: string; expires_in: number; scope: string };
      expect(body.token_type).toBe('bearer');
      expect(body.expires_in).toBe(300);
      expect(body.scope).toBe('system/Observation.rs');
      expect(body.access_token.split('.')).toHaveLength(3);
      expect(await tokenFor(clients['patients-only'], 'system/Patient.read')).toBeTruthy();
    });

    const refusals: Array<[string, () => Promise<Record<string, string>>, number, string]> = [
      ['a grant_type other than client_credentials', async () => ({ ...(await tokenRequest(clients.analytics, 'system/*.rs')), grant_type: 'authorization_code' }), 400, 'unsupported_grant_type'],
      ['a wrong client_assertion_type', async () => ({ ...(await tokenRequest(clients.analytics, 'system/*.rs')), client_assertion_type: 'password' }), 400, 'invalid_request'],
      ['an assertion that is not a JWT', async () => ({ ...(await tokenRequest(clients.analytics, 'system/*.rs')), client_assertion: 'nope' }), 400, 'invalid_request'],
      ['no scope', async () => ({ ...(await tokenRequest(clients.analytics, 'system/*.rs')), scope: '' }), 400, 'invalid_scope'],
      ['only scopes the client may not have', async () => tokenRequest(clients['patients-only'], 'system/Observation.read'), 400, 'invalid_scope'],
      ['an unknown client', async () => tokenRequest({ ...clients.analytics, id: 'stranger' }, 'system/*.rs'), 401, 'invalid_client'],
      ['iss and sub that differ', async () => tokenRequest(clients.analytics, 'system/*.rs', { sub: 'someone-else' }), 401, 'invalid_client'],
      ['an assertion for another audience', async () => tokenRequest(clients.analytics, 'system/*.rs', { aud: 'https://elsewhere.example/token' }), 401, 'invalid_client'],
      ['an assertion valid for more than 5 minutes', async () => tokenRequest(clients.analytics, 'system/*.rs', { exp: '10m' }), 401, 'invalid_client'],
      ['an expired assertion', async () => tokenRequest(clients.analytics, 'system/*.rs', { exp: Math.floor(Date.now() / 1000) - 60 }), 401, 'invalid_client'],
      [
        'an assertion signed with another key',
        async () => ({
          ...(await tokenRequest(clients.analytics, 'system/*.rs')),
          client_assertion: await assertion(clients.analytics, {}, (await generateKeyPair('ES384')).privateKey),
        }),
        401,
        'invalid_client',
      ],
    ];
    it.each(refusals)('refuses %s', async (_what, fields, status, error) => {
      const res = await requestToken(await fields());
      expect(res.status).toBe(status);
      expect(((await res.json()) as { error: string }).error).toBe(error);
    });

    it('takes the accepted audience from configuration, never from forwarded headers', async () => {
      const forged = await requestFields(clients.analytics, { aud: 'http://evil.example/auth/token' });
      const res = await smart.requestToken(forged, { 'X-Forwarded-Host': 'evil.example', Forwarded: 'host=evil.example;proto=http' });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: string }).error).toBe('invalid_client');
      // The tenant-prefixed token URL under BASE_URL is the configured one for that tenant.
      const prefixed = `${stack.url}/t/${stack.store.tenant}/auth/token`;
      expect((await smart.requestToken(await requestFields(clients.analytics, { aud: prefixed }), {}, prefixed)).status).toBe(200);
    });

    it('refuses a replayed assertion (same jti)', async () => {
      const fields = await tokenRequest(clients.analytics, 'system/*.rs', { jti: 'once-only' });
      expect((await requestToken(fields)).status).toBe(200);
      const replay = await requestToken(fields);
      expect(replay.status).toBe(401);
      expect(((await replay.json()) as { error_description: string }).error_description).toContain('jti');
    });

    it('advertises only what it supports in .well-known/smart-configuration, and the token URL in the CapabilityStatement', async () => {
      const config = (await (await fetch(`${stack.fhir}/.well-known/smart-configuration`)).json()) as Record<string, string[] | string>;
      expect(config.token_endpoint).toBe(tokenUrl);
      expect(config.grant_types_supported).toEqual(['client_credentials']);
      expect(config.token_endpoint_auth_methods_supported).toEqual(['private_key_jwt']);
      expect(config.token_endpoint_auth_signing_alg_values_supported).toEqual(expect.arrayContaining(['RS384', 'ES384']));
      expect(config.capabilities).toContain('client-confidential-asymmetric');
      expect(config).not.toHaveProperty('authorization_endpoint');
      const metadata = await fetch(`${stack.fhir}/metadata`);
      expect(metadata.status).toBe(200);
      expect(JSON.stringify(await metadata.json())).toContain(tokenUrl);
    });
  });

  describe('protected requests', () => {
    it('answers 401 with WWW-Authenticate and an OperationOutcome without a token, or with a blank one', async () => {
      const variants: Array<Record<string, string>> = [{}, { Authorization: 'Bearer ' }, { Authorization: 'Basic abc' }];
      for (const headers of variants) {
        const res = await fetch(`${stack.fhir}/$export`, { headers: { ...kickoffHeaders, ...headers } });
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="bulkflow"/);
        expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
      }
      expect((await fetch(`${stack.fhir}/bulkstatus/AAAAAAAAAAAAAAAAAAAAAA`)).status).toBe(401);
      expect((await fetch(`${stack.fhir}/Patient/x`)).status).toBe(401);
    });

    it('refuses tokens for another audience, expired ones, and ones from an untrusted issuer', async () => {
      const key = await loadSigningKey(stack.pool);
      const elsewhere = new AccessTokens({ issuer: `${stack.url}/auth`, audience: 'https://other.example/fhir', key, lifetimeSeconds: 300, trusted: [] });
      const expired = await new SignJWT({ scope: 'system/*.rs', client_id: 'analytics' })
        .setProtectedHeader({ alg: 'ES384', kid: key.kid })
        .setIssuer(`${stack.url}/auth`)
        .setSubject('analytics')
        .setAudience(`${stack.fhir}`)
        .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
        .sign(key.privateKey);
      const foreign = new AccessTokens({ issuer: 'https://evil.example/auth', audience: `${stack.fhir}`, key, lifetimeSeconds: 300, trusted: [] });
      for (const [token, described] of [
        [await elsewhere.issue('analytics', ['system/*.rs']), /aud/],
        [expired, /expired/],
        [await foreign.issue('analytics', ['system/*.rs']), /issuer/],
      ] as const) {
        const res = await fetch(`${stack.fhir}/$export`, { headers: { ...kickoffHeaders, ...bearer(token) } });
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
        expect(((await res.json()) as { issue: Array<{ diagnostics: string }> }).issue[0].diagnostics).toMatch(described);
      }
    });

    it('exports only granted types: 403 for a type not granted under strict, left out and reported under lenient', async () => {
      const token = await tokenFor(clients['patients-only'], 'system/Patient.read');
      const strict = await fetch(`${stack.fhir}/$export?_type=Patient,Observation`, { headers: { ...kickoffHeaders, ...bearer(token) } });
      expect(strict.status).toBe(403);
      expect(((await strict.json()) as { issue: Array<{ code: string; expression: string[] }> }).issue[0]).toMatchObject({ code: 'forbidden', expression: ['_type'] });

      const lenient = await fetch(`${stack.fhir}/$export?_type=Patient,Observation`, {
        headers: { ...kickoffHeaders, Prefer: 'respond-async, handling=lenient', ...bearer(token) },
      });
      expect(lenient.status).toBe(202);
      const statusUrl = lenient.headers.get('content-location')!;
      const done = await pollWithToken(statusUrl, token);
      expect(done.output.map((o) => o.type)).toEqual(['Patient']);
      const errors = await (await fetch(done.error[0].url, { headers: bearer(token) })).text();
      expect(errors).toContain('Observation');

      // Without _type, the export covers the granted types only.
      const all = await fetch(`${stack.fhir}/$export`, { headers: { ...kickoffHeaders, ...bearer(token) } });
      const everything = await pollWithToken(all.headers.get('content-location')!, token);
      expect([...new Set(everything.output.map((o) => o.type))]).toEqual(['Patient']);
    });

    it("lets only the owner (or an admin) see, download and cancel an export: others get 404", async () => {
      const owner = await tokenFor(clients.analytics, 'system/*.rs');
      const other = await tokenFor(clients['patients-only'], 'system/Patient.read');
      const admin = await tokenFor(clients.operator, `system/*.read ${ADMIN_SCOPE}`);
      const kick = await fetch(`${stack.fhir}/$export?_type=Patient`, { headers: { ...kickoffHeaders, ...bearer(owner) } });
      expect(kick.status).toBe(202);
      const statusUrl = kick.headers.get('content-location')!;
      const manifest = await pollWithToken(statusUrl, owner);
      expect(manifest.requiresAccessToken).toBe(true);
      const fileUrl = manifest.output[0].url;

      expect((await fetch(fileUrl)).status).toBe(401);
      expect((await fetch(fileUrl, { headers: bearer(owner) })).status).toBe(200);
      expect((await fetch(statusUrl, { headers: bearer(other) })).status).toBe(404);
      expect((await fetch(fileUrl, { headers: bearer(other) })).status).toBe(404);
      expect((await fetch(statusUrl, { method: 'DELETE', headers: bearer(other) })).status).toBe(404);
      expect((await fetch(statusUrl, { headers: bearer(admin) })).status).toBe(200);
      expect((await fetch(statusUrl, { method: 'DELETE', headers: bearer(owner) })).status).toBe(202);
    });

    it('checks what includeAssociatedData adds against the scopes: Provenance needs read access like a requested type', async () => {
      const observations = await register('observations-only', 'ES384', ['system/Observation.read']);
      const token = await tokenFor(observations, 'system/Observation.read');
      const { rows } = await stack.pool.query("SELECT id FROM resource_versions WHERE tenant = $1 AND resource_type = 'Observation' LIMIT 1", [stack.store.tenant]);
      await stack.store.write([{ op: 'put', resource: { resourceType: 'Provenance', id: 'prov-scoped', target: [{ reference: `Observation/${rows[0].id}` }], recorded: '2024-01-01T00:00:00Z' } as never }]);
      expect((await fetch(`${stack.fhir}/Provenance/prov-scoped`, { headers: bearer(token) })).status).toBe(403);
      for (const level of ['', '/Patient']) {
        const url = `${stack.fhir}${level}/$export?_type=Observation&includeAssociatedData=RelevantProvenanceResources`;
        const strict = await fetch(url, { headers: { ...kickoffHeaders, ...bearer(token) } });
        expect(strict.status).toBe(403);
        expect(((await strict.json()) as { issue: Array<{ expression: string[] }> }).issue[0].expression).toEqual(['includeAssociatedData']);
        const lenient = await fetch(url, { headers: { ...kickoffHeaders, Prefer: 'respond-async, handling=lenient', ...bearer(token) } });
        expect(lenient.status).toBe(202);
        const done = await pollWithToken(lenient.headers.get('content-location')!, token);
        expect([...new Set(done.output.map((o) => o.type))]).toEqual(['Observation']);
        expect(await (await fetch(done.error[0].url, { headers: bearer(token) })).text()).toContain('Provenance');
      }
      // Patient level without _type: the referenced Practitioners etc. come only with their scopes.
      const all = await fetch(`${stack.fhir}/Patient/$export`, { headers: { ...kickoffHeaders, ...bearer(token) } });
      const everything = await pollWithToken(all.headers.get('content-location')!, token);
      expect([...new Set(everything.output.map((o) => o.type))]).toEqual(['Observation']);
    });

    it('answers a cancelled job with the same 404 as an unknown one, to its owner and to anyone else', async () => {
      const owner = await tokenFor(clients.analytics, 'system/*.rs');
      const other = await tokenFor(clients['patients-only'], 'system/Patient.read');
      const kick = await fetch(`${stack.fhir}/$export?_type=Patient`, { headers: { ...kickoffHeaders, ...bearer(owner) } });
      const statusUrl = kick.headers.get('content-location')!;
      expect((await fetch(statusUrl, { method: 'DELETE', headers: bearer(owner) })).status).toBe(202);
      const answer = async (url: string, token: string) => {
        const res = await fetch(url, { headers: bearer(token) });
        return { status: res.status, body: ((await res.json()) as { issue: unknown }).issue };
      };
      const unknown = await answer(`${stack.fhir}/bulkstatus/${'A'.repeat(22)}`, owner);
      expect(unknown.status).toBe(404);
      expect(await answer(statusUrl, owner)).toEqual(unknown);
      expect(await answer(statusUrl, other)).toEqual(unknown);
      expect(await answer(`${statusUrl}/result`, other)).toEqual(unknown);
    });

    it("accepts a token only in its client's tenant", async () => {
      const elsewhere = await register(`acme-${randomUUID().slice(0, 8)}`, 'ES384', ['system/*.rs'], 'acme');
      const token = await tokenFor(elsewhere, 'system/*.rs');
      const here = await fetch(`${stack.fhir}/Patient?_summary=count`, { headers: bearer(token) });
      expect(here.status).toBe(403);
      expect(((await here.json()) as { issue: Array<{ diagnostics: string }> }).issue[0].diagnostics).toContain('tenant');
      expect((await fetch(`${stack.url}/t/acme/fhir/Patient?_summary=count`, { headers: bearer(token) })).status).toBe(200);
    });

    it('checks REST reads, searches and writes against the scopes', async () => {
      const patientsOnly = await tokenFor(clients['patients-only'], 'system/Patient.read');
      const { rows } = await stack.pool.query("SELECT id FROM resource_versions WHERE tenant = $1 AND resource_type = 'Patient' LIMIT 1", [stack.store.tenant]);
      const patientId = rows[0].id as string;
      expect((await fetch(`${stack.fhir}/Patient/${patientId}`, { headers: bearer(patientsOnly) })).status).toBe(200);
      expect((await fetch(`${stack.fhir}/Patient?_summary=count`, { headers: bearer(patientsOnly) })).status).toBe(200);
      expect((await fetch(`${stack.fhir}/Observation?_summary=count`, { headers: bearer(patientsOnly) })).status).toBe(403);
      const write = await fetch(`${stack.fhir}/Patient/new-one`, {
        method: 'PUT',
        headers: { ...bearer(patientsOnly), 'Content-Type': 'application/fhir+json' },
        body: JSON.stringify({ resourceType: 'Patient', id: 'new-one' }),
      });
      expect(write.status).toBe(403);
      // Refused means nothing was written: no version of it, a DELETE and a transaction refused alike.
      expect(await stack.store.read('Patient', 'new-one')).toBeUndefined();
      const before = (await stack.store.read('Patient', patientId))!;
      expect((await fetch(`${stack.fhir}/Patient/${patientId}`, { method: 'DELETE', headers: bearer(patientsOnly) })).status).toBe(403);
      const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'PUT', url: 'Patient/new-two' }, resource: { resourceType: 'Patient', id: 'new-two' } }] };
      expect((await fetch(stack.fhir, { method: 'POST', headers: { ...bearer(patientsOnly), 'Content-Type': 'application/fhir+json' }, body: JSON.stringify(bundle) })).status).toBe(403);
      expect(await stack.store.read('Patient', 'new-two')).toBeUndefined();
      const after = (await stack.store.read('Patient', patientId))!;
      expect({ deleted: after.deleted, versionId: after.versionId }).toEqual({ deleted: before.deleted, versionId: before.versionId });
    });

    it('lets only admin tokens manage schedules: 401 without a token, 403 without bulkflow/admin', async () => {
      const schedules = `${stack.url}/admin/schedules`;
      expect((await fetch(schedules)).status).toBe(401);
      const reader = await tokenFor(clients.analytics, 'system/*.rs');
      const refused = await fetch(schedules, { headers: bearer(reader) });
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
      const admin = await tokenFor(clients.operator, `system/*.read ${ADMIN_SCOPE}`);
      const listed = await fetch(schedules, { headers: bearer(admin) });
      expect(listed.status).toBe(200);
      expect(await listed.json()).toEqual({ schedules: [] });
    });
  });

  describe('an external authorization server', () => {
    let external: ExportStack;
    let jwksServer: Server;
    const issuer = 'https://login.example.org/realms/health';
    let signingKey: KeyLike;

    beforeAll(async () => {
      const { publicKey, privateKey } = await generateKeyPair('RS384');
      signingKey = privateKey;
      const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'ext-1', alg: 'RS384', use: 'sig' }] });
      jwksServer = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(jwks));
      await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
      const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
      external = await startExportStack({ auth: true, trustedIssuers: [{ issuer, jwksUrl }] });
    });
    afterAll(async () => {
      await external.close();
      await new Promise((resolve) => jwksServer.close(resolve));
    });

    const externalToken = (audience: string, key = signingKey) =>
      new SignJWT({ scope: 'system/Patient.rs', tenant: external.store.tenant })
        .setProtectedHeader({ alg: 'RS384', kid: 'ext-1' })
        .setIssuer(issuer)
        .setSubject('partner-app')
        .setAudience(audience)
        .setExpirationTime('5m')
        .sign(key);

    it("accepts its tokens, verified with the keys its JWKS URL serves, and refuses ones it did not sign", async () => {
      const ok = await fetch(`${external.fhir}/Patient?_summary=count`, { headers: bearer(await externalToken(external.fhir)) });
      expect(ok.status).toBe(200);
      const forged = await fetch(`${external.fhir}/Patient?_summary=count`, {
        headers: bearer(await externalToken(external.fhir, (await generateKeyPair('RS384')).privateKey)),
      });
      expect(forged.status).toBe(401);
      const wrongAudience = await fetch(`${external.fhir}/Patient?_summary=count`, { headers: bearer(await externalToken('https://other.example/fhir')) });
      expect(wrongAudience.status).toBe(401);
    });
  });

  async function pollWithToken(statusUrl: string, token: string) {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const res = await fetch(statusUrl, { headers: bearer(token) });
      if (res.status === 200) return (await res.json()) as Awaited<ReturnType<typeof pollUntilDone>>['manifest'];
      if (res.status !== 202) throw new Error(`status answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    throw new Error('export did not finish');
  }
});
