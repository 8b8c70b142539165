/** How processes reach Temporal: plain by default; TLS with an API key or mTLS (Temporal Cloud), from the environment. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config';
import { temporalConnectionOptions } from '../../src/temporal/connection-options';

describe('Temporal connection settings', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'temporal-tls-'));
    writeFileSync(path.join(dir, 'client.pem'), 'CERT');
    writeFileSync(path.join(dir, 'client.key'), 'KEY');
    writeFileSync(path.join(dir, 'ca.pem'), 'CA');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const optionsFor = (env: Record<string, string>) => temporalConnectionOptions('ns.acct.tmprl.cloud:7233', loadConfig(env).temporalTls);

  it('connects in plain text unless told otherwise', () => {
    expect(optionsFor({})).toEqual({ address: 'ns.acct.tmprl.cloud:7233' });
  });

  it('uses TLS with an API key, and mTLS with a certificate pair and a CA', () => {
    expect(optionsFor({ TEMPORAL_API_KEY: 'secret' })).toEqual({ address: 'ns.acct.tmprl.cloud:7233', tls: {}, apiKey: 'secret' });
    expect(optionsFor({ TEMPORAL_TLS: 'true' })).toEqual({ address: 'ns.acct.tmprl.cloud:7233', tls: {} });
    const mtls = optionsFor({ TEMPORAL_TLS_CERT_FILE: path.join(dir, 'client.pem'), TEMPORAL_TLS_KEY_FILE: path.join(dir, 'client.key'), TEMPORAL_TLS_CA_FILE: path.join(dir, 'ca.pem') });
    expect(mtls.tls?.clientCertPair?.crt.toString()).toBe('CERT');
    expect(mtls.tls?.clientCertPair?.key.toString()).toBe('KEY');
    expect(mtls.tls?.serverRootCACertificate?.toString()).toBe('CA');
  });

  it('refuses settings that cannot work, naming the variable', () => {
    const refusal = (env: Record<string, string>) => {
      try {
        optionsFor(env);
      } catch (err) {
        return err instanceof ConfigError ? err.variable : String(err);
      }
      return 'accepted';
    };
    expect(refusal({ TEMPORAL_TLS_CERT_FILE: path.join(dir, 'client.pem') })).toBe('TEMPORAL_TLS_KEY_FILE');
    expect(refusal({ TEMPORAL_TLS_KEY_FILE: path.join(dir, 'client.key') })).toBe('TEMPORAL_TLS_CERT_FILE');
    expect(refusal({ TEMPORAL_API_KEY: 'secret', TEMPORAL_TLS: 'false' })).toBe('TEMPORAL_TLS');
    expect(refusal({ TEMPORAL_TLS: 'maybe' })).toBe('TEMPORAL_TLS');
    expect(refusal({ TEMPORAL_TLS_CERT_FILE: path.join(dir, 'none.pem'), TEMPORAL_TLS_KEY_FILE: path.join(dir, 'client.key') })).toBe('TEMPORAL_TLS_CERT_FILE');
  });
});
