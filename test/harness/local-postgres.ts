import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { createClient } from '../../src/store/database';

async function answers(url: string): Promise<boolean> {
  const client = createClient(url, { connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Makes sure the PostgreSQL server at `serverUrl` answers: starts the local cluster with
 * pg_ctlcluster when it is installed but stopped, and fails with a clear message otherwise.
 */
export async function ensureLocalPostgres(serverUrl: string): Promise<void> {
  const maintenanceUrl = new URL(serverUrl);
  maintenanceUrl.pathname = '/postgres';
  if (await answers(maintenanceUrl.toString())) return;

  const versions = existsSync('/etc/postgresql') ? readdirSync('/etc/postgresql') : [];
  if (versions.length === 0) {
    throw new Error(
      `PostgreSQL does not answer at ${serverUrl} and no local cluster is installed (/etc/postgresql is empty). ` +
        'Install PostgreSQL (apt-get install postgresql) or set TEST_DATABASE_SERVER_URL to a server you can create databases on.',
    );
  }
  const startErrors: string[] = [];
  for (const version of versions) {
    try {
      execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], { stdio: 'pipe' });
    } catch (err) {
      const e = err as { stderr?: Buffer; stdout?: Buffer };
      startErrors.push(`${version}: ${(e.stderr?.toString() || e.stdout?.toString() || String(err)).trim()}`);
    }
  }
  for (let i = 0; i < 50; i++) {
    if (await answers(maintenanceUrl.toString())) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(
    `PostgreSQL does not answer at ${serverUrl} (as user ${os.userInfo().username}), ` +
      `even after pg_ctlcluster start. ${startErrors.join('; ')}`,
  );
}
