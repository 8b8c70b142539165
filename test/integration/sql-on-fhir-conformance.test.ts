/**
 * The official SQL on FHIR test suite over HTTP against `$sql-run` (conformance/run.ts is the
 * same run as a command): every shareable case must pass, and 9 of the 11 experimental ones.
 */
import { belowTargets, withLocalApi } from '../../conformance/run';
import { runSqlOnFhirSuite } from '../../conformance/sql-on-fhir-suite';
import { SUITE_NOT_RUN, sqlOnFhirSuiteDir } from '../../conformance/suite-location';

const SUITE = sqlOnFhirSuiteDir();

describe('SQL on FHIR ViewDefinition test suite', () => {
  if (!SUITE) it.skip(SUITE_NOT_RUN, () => undefined);
  else it('passes every shareable case and at least 9 experimental ones, compared strictly', async () => {
    const report = await withLocalApi((base) => runSqlOnFhirSuite(SUITE, base));
    const failed = report.results.filter((r) => !r.passed && r.tags.includes('shareable'));
    expect(failed.map((r) => `${r.file} :: ${r.name}: ${r.reason}`)).toEqual([]);
    expect(report.byTag.shareable.total).toBe(133);
    expect(report.byTag.experimental.total).toBe(11);
    expect(belowTargets(report)).toEqual([]);
    // The report has the suite's shape: one entry per file, one result per case.
    expect(Object.keys(report.testReport)).toHaveLength(22);
    expect(Object.values(report.testReport).flatMap((f) => f.tests)).toHaveLength(144);
  }, 120_000);
});
