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

/**
 * Finds a tool: the explicit path if given (which must work), else `.tools/bin` (installed by
 * deploy/install-tools.sh), else PATH. Throws a message that says how to install it.
 */
export function findBinary(name: string, explicitPath: string | undefined, envName: string): string {
  if (explicitPath) {
    if (isExecutable(explicitPath)) return explicitPath;
    throw new Error(`${envName}=${explicitPath} is not an executable file`);
  }
  const candidates = [
    path.join(projectRoot, '.tools', 'bin', name),
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, name)),
  ];
  const found = candidates.find(isExecutable);
  if (found) return found;
  throw new Error(
    `${name} was not found in .tools/bin or on PATH. Run deploy/install-tools.sh (needs Go), or set ${envName}.`,
  );
}
