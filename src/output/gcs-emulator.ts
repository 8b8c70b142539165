import { findBinary } from '../process/find-binary';
import { findFreePort } from '../process/free-port';
import { ManagedChild } from '../process/managed-child';

export interface GcsEmulator {
  /** Pass as `apiEndpoint` to `@google-cloud/storage` (or as STORAGE_EMULATOR_HOST to bulkflow). */
  endpoint: string;
  pid: number | undefined;
  /** Deletes every bucket and object (fake-gcs-server's internal reset endpoint). */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts fake-gcs-server over plain HTTP with an in-memory backend on a free loopback port. */
export async function startGcsEmulator(options: { binaryPath?: string; port?: number } = {}): Promise<GcsEmulator> {
  const binary = findBinary('fake-gcs-server', options.binaryPath, 'FAKE_GCS_PATH');
  const port = options.port ?? (await findFreePort());
  const endpoint = `http://127.0.0.1:${port}`;
  const child = new ManagedChild({
    name: 'fake-gcs-server',
    command: binary,
    args: [
      '-scheme', 'http',
      '-host', '127.0.0.1',
      '-port', String(port),
      '-backend', 'memory',
      '-external-url', endpoint,
      // Path-style /<bucket>/<object> (signed URLs) is served only for this exact host.
      '-public-host', `127.0.0.1:${port}`,
      '-log-level', 'warn',
    ],
  });
  await child.waitUntilReady(async () => (await fetch(`${endpoint}/_internal/healthcheck`)).ok, 30_000);
  return {
    endpoint,
    pid: child.pid,
    reset: async () => {
      const res = await fetch(`${endpoint}/_internal/delete_all`, { method: 'POST' });
      if (!res.ok) throw new Error(`fake-gcs-server reset failed: ${res.status} ${await res.text()}`);
    },
    stop: () => child.stop(),
  };
}
