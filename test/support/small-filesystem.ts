/**
 * A small filesystem that any user can fill, for the full-disk rounds: a tmpfs mounted inside a
 * user and mount namespace of our own (`unshare --user --map-root-user --mount`: no root needed,
 * only unprivileged user namespaces, which Linux distributions enable). The namespace lives as
 * long as a holder process; the processes that must write to it are started inside it
 * (`nsenter` into the holder's namespaces); the test reads and fills it from outside through
 * `/proc/<holder>/root`, the holder's view of the file system.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';

export interface SmallFilesystem {
  /** Where processes started with `launch` see it. */
  inside: string;
  /** The same folder, as this process reaches it. */
  outside: string;
  /** A command and arguments that run `command args` inside the namespace. */
  launch(command: string, args: string[]): [string, string[]];
  release(): Promise<void>;
}

export async function mountSmallFilesystem(dir: string, bytes: number): Promise<SmallFilesystem> {
  mkdirSync(dir, { recursive: true });
  const holder: ChildProcess = spawn('unshare', ['--user', '--map-root-user', '--mount', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o size=${bytes} tmpfs "$0" && echo mounted && exec sleep 86400`, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  holder.stdout!.on('data', (chunk) => (output += chunk));
  holder.stderr!.on('data', (chunk) => (output += chunk));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no tmpfs mounted within 10 s: ${output}`)), 10_000);
    holder.stdout!.on('data', () => {
      if (output.includes('mounted')) {
        clearTimeout(timer);
        resolve();
      }
    });
    holder.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`unshare exited (${code}) before mounting a tmpfs: ${output.trim()} (unprivileged user namespaces must be enabled)`));
    });
  });
  const pid = holder.pid!;
  const launch = (command: string, args: string[]): [string, string[]] => ['nsenter', ['--target', String(pid), '--user', '--mount', '--preserve-credentials', command, ...args]];
  // The namespace's root is this user outside: check that a process started inside writes where the test reads.
  const probe = spawnSync(...launch('sh', ['-c', 'echo probe > "$0/.probe"', dir]), { encoding: 'utf8' });
  if (probe.status !== 0) throw new Error(`nsenter into the small filesystem failed: ${probe.stderr}`);
  return {
    inside: dir,
    outside: `/proc/${pid}/root${dir}`,
    launch,
    release: async () => {
      if (holder.exitCode === null) {
        holder.kill('SIGKILL');
        await new Promise((resolve) => holder.once('exit', resolve));
      }
    },
  };
}
