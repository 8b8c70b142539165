/**
 * `$bulk-submit` and `$import` from a provider whose API needs a token (SMART Backend Services
 * on): with `oauthMetadataUrl` (and for `$import` always, when the submitter has a client), the
 * recipient gets its own token at the provider's token endpoint, as a client registered there
 * with the key configured for the submitter, and loads exactly the provider's resources. Without
 * a token the provider refuses, and an export another client started stays that client's; the
 * status manifest says which.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { ClientRegistry } from '../../src/auth/clients';
import { generatePopulation } from '../../src/generate/population';
import { uniqueTenant } from '../support/database';
import { kickoffHeaders, pollUntilDone, startExportStack, type ExportStack } from '../support/export-stack';
import { SmartClients } from '../support/smart-clients';
import { awaitSubmission, pollSubmission, storeContents, submit } from '../support/submissions';

jest.setTimeout(120_000);

const submitter = { system: 'https://provider.test/ids', value: 'smart-provider' };

describe('$bulk-submit from a provider that needs a token', () => {
  let provider: ExportStack;
  let recipient: ExportStack;
  /** An export the provider ran under the recipient's registration, and one of another client's. */
  let manifestUrl: string;
  let othersManifestUrl: string;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-submit-smart-'));
  const recipientTenant = uniqueTenant('smart-recipient');

  beforeAll(async () => {
    provider = await startExportStack({ auth: true });
    await provider.startWorker();
    await provider.store.write([...generatePopulation({ patients: 5, seed: 12 })].map((resource) => ({ op: 'put' as const, resource })));

    // The recipient as a client registered at the provider (its public key there, its private key in a file beside the submitters').
    const smart = new SmartClients(provider);
    const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
    await new ClientRegistry(provider.pool).save({ clientId: 'recipient', scopes: ['system/*.rs'], tenant: provider.store.tenant, jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'recipient-key', alg: 'ES384' }] } });
    writeFileSync(path.join(tmp, 'recipient.jwk.json'), JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'recipient-key', alg: 'ES384' }));
    const exportAs = async (token: string) => {
      const kick = await fetch(`${provider.fhir}/$export`, { headers: { ...kickoffHeaders, Authorization: `Bearer ${token}` } });
      expect(kick.status).toBe(202);
      const statusUrl = kick.headers.get('content-location')!;
      for (let res = await fetch(statusUrl, { headers: { Authorization: `Bearer ${token}` } }); res.status !== 200; res = await fetch(statusUrl, { headers: { Authorization: `Bearer ${token}` } })) {
        expect(res.status).toBe(202);
        await res.arrayBuffer();
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      return statusUrl;
    };
    // bulkflow's exports are their client's alone: the provider exports for this recipient under its registration.
    manifestUrl = await exportAs(await smart.tokenFor({ id: 'recipient', alg: 'ES384', privateKey }, 'system/*.rs'));
    othersManifestUrl = await exportAs(await smart.tokenFor(await smart.register('provider-exporter', 'ES384', ['system/*.rs']), 'system/*.rs'));
    // Without a token the provider refuses: the recipient must get one of its own.
    await expect(pollUntilDone(manifestUrl, 2000)).rejects.toThrow(/401/);

    recipient = await startExportStack({
      tenant: recipientTenant,
      submitters: [{ tenant: recipientTenant, ...submitter, allowedUrls: [`${provider.url}/`], client: { clientId: 'recipient', privateKeyFile: path.join(tmp, 'recipient.jwk.json'), scope: 'system/*.rs' } }],
    });
    await recipient.startWorker();
  });

  afterAll(async () => {
    await recipient?.close();
    await provider?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('gets its own token with oauthMetadataUrl and loads exactly the provider\'s resources', async () => {
    const res = await submit(recipient.fhir, { submitter, submissionId: 'smart-1', manifestUrl, fhirBaseUrl: provider.fhir, status: 'completed', extra: [{ name: 'oauthMetadataUrl', valueUrl: `${provider.fhir}/.well-known/smart-configuration` }] });
    expect(res.status).toBe(200);
    const { manifest } = await awaitSubmission(recipient.fhir, submitter, 'smart-1');
    const outcome = await (await fetch(manifest.outcome[0].url)).text();
    expect(outcome.split('\n').filter((l) => l.includes('"error"'))).toEqual([]);
    const expected = await storeContents(provider.pool, provider.store.tenant);
    const loaded = await storeContents(recipient.pool, recipientTenant);
    expect(loaded.size).toBe(expected.size);
    expect([...loaded.entries()].filter(([k, v]) => expected.get(k) !== v).map(([k]) => k)).toEqual([]);
    expect(outcome).toContain(`${expected.size} resources written`);
  });

  it('without oauthMetadataUrl, reports the provider\'s refusal in the status manifest and loads nothing', async () => {
    const before = (await storeContents(recipient.pool, recipientTenant)).size;
    expect((await submit(recipient.fhir, { submitter, submissionId: 'smart-2', manifestUrl, fhirBaseUrl: provider.fhir, status: 'completed' })).status).toBe(200);
    const { manifest } = await awaitSubmission(recipient.fhir, submitter, 'smart-2');
    const outcome = await (await fetch(manifest.outcome[0].url)).text();
    expect(manifest.outcome[0].countSeverity).toContainEqual({ code: 'error', count: 1 });
    expect(outcome).toMatch(/answered 401/);
    expect((await storeContents(recipient.pool, recipientTenant)).size).toBe(before);
  });

  it('reports an export another client started as not found (the provider keeps it that client\'s), loading nothing', async () => {
    const before = (await storeContents(recipient.pool, recipientTenant)).size;
    const oauth = { name: 'oauthMetadataUrl', valueUrl: `${provider.fhir}/.well-known/smart-configuration` };
    expect((await submit(recipient.fhir, { submitter, submissionId: 'smart-3', manifestUrl: othersManifestUrl, fhirBaseUrl: provider.fhir, status: 'completed', extra: [oauth] })).status).toBe(200);
    const { manifest } = await awaitSubmission(recipient.fhir, submitter, 'smart-3');
    expect(await (await fetch(manifest.outcome[0].url)).text()).toMatch(/answered 404/);
    expect((await storeContents(recipient.pool, recipientTenant)).size).toBe(before);
  });

  it('imports by ping and pull with a token of its own: kicks off, polls and downloads at the provider as its registered client', async () => {
    await provider.store.put({ resourceType: 'Patient', id: 'smart-import-new', gender: 'female' });
    const res = await fetch(`${recipient.fhir}/$import`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'exportUrl', valueUrl: `${provider.fhir}/$export?_type=Patient` }] }),
    });
    expect(res.status).toBe(202);
    const manifest = await pollSubmission(res.headers.get('content-location')!);
    expect(await (await fetch(manifest.outcome[0].url)).text()).not.toMatch(/"severity":"error"/);
    const expected = await storeContents(provider.pool, provider.store.tenant);
    const loaded = await storeContents(recipient.pool, recipientTenant);
    const patients = [...expected.keys()].filter((k) => k.startsWith('Patient/'));
    expect(patients).toContain('Patient/smart-import-new');
    expect(patients.filter((k) => loaded.get(k) !== expected.get(k))).toEqual([]);
  });
});
