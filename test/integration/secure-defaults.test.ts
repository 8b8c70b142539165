/**
 * Deny by default, as a deployed `bulkflow serve` starts: with no HOST it listens on every
 * interface, so authorization is on unless AUTH_ENABLED=false says otherwise (an anonymous read is
 * refused, discovery still answers); said otherwise, it serves, but warns in its log and in its
 * CapabilityStatement's software name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findFreePort } from '../../src/process/free-port';
import { testEnvironment } from '../harness/environment';
import { waitFor } from '../support/wait';

const cli = path.resolve(__dirname, '../../dist/src/cli.js');

describe('bulkflow serve on a network address', () => {
  const outputDir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-secure-'));
  const started: ChildProcess[] = [];
  afterAll(() => {
    for (const child of started) if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(outputDir, { recursive: true, force: true });
  });

  /** `serve` with no HOST (every interface) and the given settings; resolves once /metadata answers. */
  async function serve(env: Record<string, string>): Promise<{ fhir: string; output: () => string }> {
    const port = await findFreePort();
    let output = '';
    const child = spawn(process.execPath, [cli, 'serve'], {
      env: { ...process.env, HOST: '', AUTH_ENABLED: '', TEMPORAL_ADDRESS: testEnvironment.temporalAddress, TEMPORAL_NAMESPACE: testEnvironment.temporalNamespace, DATABASE_URL: testEnvironment.databaseUrl, PORT: String(port), BASE_URL: `http://127.0.0.1:${port}`, OUTPUT_DIR: outputDir, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started.push(child);
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const fhir = `http://127.0.0.1:${port}/fhir`;
    await waitFor(async () => (await fetch(`${fhir}/metadata`).catch(() => undefined))?.status === 200, 60_000, `serve to answer:\n${output}`);
    return { fhir, output: () => output };
  }
  const softwareName = async (fhir: string) => ((await (await fetch(`${fhir}/metadata`)).json()) as { software: { name: string } }).software.name;

  it('asks for a token by default', async () => {
    const { fhir, output } = await serve({});
    const anonymous = await fetch(`${fhir}/Patient`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
    expect((await fetch(`${fhir}/$export`, { headers: { Prefer: 'respond-async' } })).status).toBe(401);
    expect(await softwareName(fhir)).toBe('bulkflow');
    expect(output()).toMatch(/"host":"0\.0\.0\.0".*"authorization":"on"/);
  });

  it('serves without tokens only when told AUTH_ENABLED=false, and then warns in its log and its CapabilityStatement', async () => {
    const { fhir, output } = await serve({ AUTH_ENABLED: 'false' });
    expect((await fetch(`${fhir}/Patient`)).status).toBe(200);
    expect(await softwareName(fhir)).toMatch(/^bulkflow \(AUTHORIZATION OFF/);
    expect(output()).toContain('AUTHORIZATION IS OFF on an address other machines can reach');
  });
});
