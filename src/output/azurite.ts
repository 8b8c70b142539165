import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findFreePort } from '../process/free-port';
import { ManagedChild } from '../process/managed-child';

/** Azurite's one well-known development account (its documented key, not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  /** `http://127.0.0.1:<port>/devstoreaccount1`: AZURE_STORAGE_ACCOUNT_URL's form. */
  accountUrl: string;
  /** The development connection string (account key): AZURE_STORAGE_CONNECTION_STRING's form. */
  connectionString: string;
  pid: number | undefined;
  stop(): Promise<void>;
}

/**
 * Starts Azurite's Blob service (Microsoft's Azure Storage emulator, from npm) on a free loopback
 * port, for tests and benches, on the Node.js running this process, with a folder of its own.
 * Not `--loose`: it checks every request's SharedKey signature and every SAS.
 */
export async function startAzurite(): Promise<Azurite> {
  const main = require.resolve('azurite/dist/src/blob/main.js');
  const port = await findFreePort();
  const location = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-azurite-'));
  const child = new ManagedChild({
    name: 'azurite',
    command: process.execPath,
    args: [main, '--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', location, '--silent', '--skipApiVersionCheck'],
  });
  const accountUrl = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  await child.waitUntilReady(async () => (await fetch(`${accountUrl}?comp=properties&restype=service`)).status > 0, 30_000);
  return {
    accountUrl,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${accountUrl};`,
    pid: child.pid,
    stop: async () => {
      await child.stop();
      rmSync(location, { recursive: true, force: true });
    },
  };
}
