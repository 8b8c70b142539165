import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { findBinary } from '../process/find-binary';
import { findFreePort } from '../process/free-port';
import { ManagedChild } from '../process/managed-child';

export interface S3Server {
  /** Pass as S3_ENDPOINT (with S3_FORCE_PATH_STYLE=true). */
  endpoint: string;
  region: string;
  /** The one account's keys: what AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY hand the SDK's default chain. */
  accessKeyId: string;
  secretAccessKey: string;
  pid: number | undefined;
  stop(): Promise<void>;
}

/**
 * Starts versitygw (Apache-2.0, S3 over a POSIX folder) on a free loopback port, for tests and
 * benches: a real S3 server that checks every request's SigV4 signature, presigned URLs included,
 * with fresh random keys and a folder of its own, removed when it stops.
 */
export async function startS3Server(options: { binaryPath?: string } = {}): Promise<S3Server> {
  const binary = findBinary('versitygw', options.binaryPath, 'VERSITYGW_PATH');
  const port = await findFreePort();
  const root = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-s3-'));
  const region = 'us-east-1';
  const accessKeyId = `AK${randomBytes(9).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(24).toString('base64url');
  const endpoint = `http://127.0.0.1:${port}`;
  const child = new ManagedChild({
    name: 'versitygw',
    command: binary,
    args: ['--port', `127.0.0.1:${port}`, '--access', accessKeyId, '--secret', secretAccessKey, '--region', region, '--quiet', 'posix', root],
  });
  // Any answer (an unsigned request is refused with 403) says it listens.
  await child.waitUntilReady(async () => (await fetch(`${endpoint}/`)).status > 0, 30_000);
  return {
    endpoint,
    region,
    accessKeyId,
    secretAccessKey,
    pid: child.pid,
    stop: async () => {
      await child.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
