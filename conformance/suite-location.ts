import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * Where the SQL on FHIR test suite is: `SOF_TESTS_DIR`, else the first `shared/data/sof-tests`
 * beside the project or one of its parent folders (where the shared data sits next to a checkout).
 */
export function sqlOnFhirSuiteDir(): string {
  if (process.env.SOF_TESTS_DIR) return path.resolve(process.env.SOF_TESTS_DIR);
  const projectRoot = path.resolve(__dirname, '..', ...(path.basename(path.dirname(__dirname)) === 'dist' ? ['..'] : []));
  for (let dir = path.dirname(projectRoot); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'shared', 'data', 'sof-tests');
    if (existsSync(path.join(candidate, 'tests'))) return candidate;
    if (path.dirname(dir) === dir) throw new Error('The SQL on FHIR test suite (shared/data/sof-tests) is not beside this project or a parent folder; set SOF_TESTS_DIR');
  }
}
