/**
 * A token in two commands, as docs/security.md shows them: `bulkflow clients add --generate-key`
 * writes a private key only its owner can read and registers its public half;
 * `bulkflow token` signs an assertion with it and prints an access token from the running server,
 * which then reads what its scopes allow (and the admin client reaches the admin API).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { generatePopulation } from '../../src/generate/population';
import { testEnvironment } from '../harness/environment';
import { startExportStack, type ExportStack } from '../support/export-stack';

const cli = path.resolve(__dirname, '../../dist/src/cli.js');
const run = async (args: string[]) => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], { env: { ...process.env, DATABASE_URL: testEnvironment.databaseUrl, LOG_LEVEL: 'error' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
};

describe('bulkflow clients add --generate-key, then bulkflow token', () => {
  let stack: ExportStack;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-keys-'));
  const population = [...generatePopulation({ patients: 2, seed: 17 })];

  beforeAll(async () => {
    stack = await startExportStack({ auth: true });
    await stack.store.write(population.map((resource) => ({ op: 'put' as const, resource })));
  });
  afterAll(async () => {
    await stack.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gets a token that reads the store, and one that reaches the admin API', async () => {
    const key = path.join(dir, 'analytics.jwk');
    const added = await run(['clients', 'add', 'analytics-cli', '--scopes', 'system/*.rs', '--generate-key', key, '--tenant', stack.store.tenant]);
    expect([added.code, added.stdout]).toEqual([0, expect.stringContaining('client analytics-cli saved')]);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    const jwk = JSON.parse(readFileSync(key, 'utf8')) as { kty: string; d?: string; alg: string };
    expect([jwk.kty, jwk.alg, typeof jwk.d]).toEqual(['EC', 'ES384', 'string']);
    // Never over an existing key.
    expect((await run(['clients', 'add', 'other', '--scopes', 'system/*.rs', '--generate-key', key])).code).not.toBe(0);

    const issued = await run(['token', 'analytics-cli', '--key', key, '--scope', 'system/Patient.rs', '--fhir', stack.fhir]);
    expect(issued.code).toBe(0);
    const token = issued.stdout.trim();
    expect(token.split('.')).toHaveLength(3);
    expect((await fetch(`${stack.fhir}/Patient`)).status).toBe(401);
    const search = await fetch(`${stack.fhir}/Patient`, { headers: { Authorization: `Bearer ${token}` } });
    expect(search.status).toBe(200);
    const bundle = (await search.json()) as { entry: Array<{ resource: { id: string } }> };
    expect(bundle.entry.map((e) => e.resource.id).sort()).toEqual(population.filter((r) => r.resourceType === 'Patient').map((r) => r.id).sort());
    expect((await fetch(`${stack.fhir}/Observation`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(403);
    expect((await fetch(`${stack.url}/admin/schedules`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(403);

    const adminKey = path.join(dir, 'admin.jwk');
    expect((await run(['clients', 'add', 'admin-cli', '--scopes', 'system/*.read bulkflow/admin', '--generate-key', adminKey, '--tenant', stack.store.tenant])).code).toBe(0);
    const admin = (await run(['token', 'admin-cli', '--key', adminKey, '--scope', 'bulkflow/admin', '--fhir', stack.fhir])).stdout.trim();
    expect((await fetch(`${stack.url}/admin/schedules`, { headers: { Authorization: `Bearer ${admin}` } })).status).toBe(200);
  });

  it('says why when the key is not the client\'s', async () => {
    const key = path.join(dir, 'stranger.jwk');
    expect((await run(['clients', 'add', 'stranger-cli', '--scopes', 'system/*.rs', '--generate-key', key, '--tenant', stack.store.tenant])).code).toBe(0);
    const refused = await run(['token', 'analytics-cli', '--key', key, '--fhir', stack.fhir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/the token endpoint refused: invalid_client/);
  });
});
