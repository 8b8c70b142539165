import path from 'node:path';

/** What a test says when the official suite is not there: it did not run (never a pass). */
export const SUITE_NOT_RUN = 'DID NOT RUN: the SQL on FHIR test suite was not found; set SOF_TESTS_DIR to its folder (.ci/run sets it)';

/**
 * Where the official SQL on FHIR test suite is: `SOF_TESTS_DIR` (its checkout, with `tests/`),
 * which `.ci/run` sets. Undefined when unset: the tests that need it say that they did not run.
 */
export function sqlOnFhirSuiteDir(): string | undefined {
  return process.env.SOF_TESTS_DIR ? path.resolve(process.env.SOF_TESTS_DIR) : undefined;
}
