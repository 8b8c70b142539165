import { readFileSync } from 'node:fs';
import type { Config } from '../config';
import { GcsOutputStore } from './gcs-output-store';
import { LocalOutputStore } from './local-output-store';
import type { OutputStore } from './output-store';

export function createOutputStore(
  config: Pick<Config, 'outputBackend' | 'outputDir' | 'gcsBucket' | 'gcsProjectId' | 'gcsApiEndpoint' | 'gcsSigningKeyFile' | 'gcsRequestTimeoutMs'>,
): OutputStore {
  if (config.outputBackend === 'local') return new LocalOutputStore(config.outputDir);
  // Loaded only for GCS: the client library and its auth stack cost a process about 10 MB of
  // memory that local output never uses.
  const { Storage } = require('@google-cloud/storage') as typeof import('@google-cloud/storage');
  // Signed URLs need a service-account key; with GCS_SIGNING_KEY_FILE it also signs for the emulator.
  const key = config.gcsSigningKeyFile ? (JSON.parse(readFileSync(config.gcsSigningKeyFile, 'utf8')) as { client_email: string; private_key: string }) : undefined;
  // @google-cloud/storage reads STORAGE_EMULATOR_HOST itself and takes it verbatim as the JSON
  // API's base URL, which needs the /storage/v1 suffix bulkflow accepts without: set as
  // `http://host:port`, uploads worked and every read, listing and deletion answered 404.
  if (process.env.STORAGE_EMULATOR_HOST !== undefined && config.gcsApiEndpoint) process.env.STORAGE_EMULATOR_HOST = `${config.gcsApiEndpoint}/storage/v1`;
  const storage = new Storage({
    timeout: config.gcsRequestTimeoutMs,
    ...(config.gcsApiEndpoint ? { apiEndpoint: config.gcsApiEndpoint } : {}),
    ...(config.gcsProjectId ? { projectId: config.gcsProjectId } : {}),
    ...(key ? { credentials: { client_email: key.client_email, private_key: key.private_key } } : {}),
  });
  return new GcsOutputStore(storage, config.gcsBucket!, '', config.gcsApiEndpoint);
}
