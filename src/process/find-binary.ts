import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';

/** The nearest directory above this file with a package.json: the project root, from src/ or dist/. */
function findProjectRoot(start: string): string {
  let dir = start;
  while (!existsSync(path.join(dir, 'package.json')) || path.basename(dir) === 'dist') {
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

export const projectRoot = findProjectRoot(__dirname);

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The install-tools.sh group that builds each tool. */
const TOOL_GROUPS: Record<string, string> = { temporal: 'temporal', 'temporal-server': 'temporal-server', 'temporal-sql-tool': 'temporal-server', 'fake-gcs-server': 'fake-gcs-server', versitygw: 'versitygw', kustomize: 'kustomize' };

/**
 * Finds a tool: the explicit path if given (which must work), else `.tools/bin` (installed by
 * deploy/install-tools.sh), else PATH. In a source checkout with Go, a missing tool is built the
 * first time it is needed (so `npm start` builds only the Temporal CLI). Otherwise throws a
 * message that says how to install it.
 */
export function findBinary(name: string, explicitPath: string | undefined, envName: string): string {
  if (explicitPath) {
    if (isExecutable(explicitPath)) return explicitPath;
    throw new Error(`${envName}=${explicitPath} is not an executable file`);
  }
  const installed = path.join(projectRoot, '.tools', 'bin', name);
  const candidates = [installed, ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, name))];
  const found = candidates.find(isExecutable);
  if (found) return found;
  const script = path.join(projectRoot, 'deploy', 'install-tools.sh');
  if (TOOL_GROUPS[name] && existsSync(script)) {
    // Its output goes to stderr: a command's stdout may be JSON logs.
    const built = spawnSync('bash', [script, TOOL_GROUPS[name]], { stdio: ['ignore', process.stderr, process.stderr] });
    if (built.status === 0 && isExecutable(installed)) return installed;
  }
  throw new Error(
    `${name} was not found in .tools/bin or on PATH. Run deploy/install-tools.sh (needs Go), or set ${envName}.`,
  );
}
