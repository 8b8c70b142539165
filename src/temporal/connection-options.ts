/**
 * How every bulkflow process connects to TEMPORAL_ADDRESS: plain on a local or private network,
 * TLS with an API key or mTLS client certificates on Temporal Cloud. One function, so the API,
 * the worker and `temporal setup` cannot connect differently.
 */
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import { ConfigError, type TemporalTlsSettings } from '../config';

export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
}

function pem(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(variable, `names a file that cannot be read: ${(err as Error).message}`);
  }
}

export function temporalConnectionOptions(address: string, settings: TemporalTlsSettings): TemporalConnectionOptions {
  if (!settings.enabled) return { address };
  const tls: TLSConfig = {};
  if (settings.clientCertFile && settings.clientKeyFile) {
    tls.clientCertPair = { crt: pem('TEMPORAL_TLS_CERT_FILE', settings.clientCertFile), key: pem('TEMPORAL_TLS_KEY_FILE', settings.clientKeyFile) };
  }
  if (settings.serverCaFile) tls.serverRootCACertificate = pem('TEMPORAL_TLS_CA_FILE', settings.serverCaFile);
  return { address, tls, ...(settings.apiKey ? { apiKey: settings.apiKey } : {}) };
}
