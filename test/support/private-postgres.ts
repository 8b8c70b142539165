/**
 * A PostgreSQL cluster of a test's own, in a temporary directory on a free port, so the test can
 * stop it the way a crash does (`pg_ctl stop -m immediate`: no checkpoint, recovery from WAL at
 * the next start) without touching the server other tests use. Built with the installed
 * server's own initdb and pg_ctl; as root they run as the `postgres` user, which PostgreSQL
 * requires.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findFreePort } from '../../src/process/free-port';

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>`: a server URL; add a database name. */
  serverUrl: string;
  /** Stops it as a crash would: no shutdown checkpoint, open connections cut. */
  crash(): void;
  start(): void;
  destroy(): void;
}

function binDir(): string {
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  } catch (err) {
    throw new Error(`pg_config is not on PATH, so the PostgreSQL server's initdb and pg_ctl cannot be found: ${String(err)}`);
  }
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = binDir();
  const root = os.userInfo().uid === 0;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bulkflow-pg-'));
  const dataDir = path.join(dir, 'data');
  if (root) {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, id('-u'), id('-g'));
  }
  const run = (command: string, args: string[]) => {
    const [file, argv] = root ? ['runuser', ['-u', 'postgres', '--', path.join(bin, command), ...args]] : [path.join(bin, command), args];
    try {
      return execFileSync(file, argv, { encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string };
      throw new Error(`${command} ${args.join(' ')} failed: ${(e.stderr || e.stdout || String(err)).trim()}`);
    }
  };
  const port = await findFreePort();
  run('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  // fsync off: the crash here is the server process's, not the machine's, so written pages survive in the OS.
  const options = `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c fsync=off -c max_connections=200 -c autovacuum=off`;
  const start = () => void run('pg_ctl', ['-D', dataDir, '-l', path.join(dir, 'server.log'), '-o', options, '-w', '-t', '60', 'start']);
  start();
  return {
    serverUrl: `postgres://postgres@127.0.0.1:${port}`,
    crash: () => void run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']),
    start,
    destroy: () => {
      try {
        run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
