import { asyncRequestKey, asyncResponseKey, downloadPath, errorFileKey, exportFileKey, latestPointerKey, partKey, storedAsyncResponse } from '../../src/output/file-keys';

// Running exports and stored async responses outlive deploys: the layout is a contract.
describe('file keys', () => {
  const at = { tenant: 'acme', exportId: 'job1' };
  const scheduled = { ...at, outputPrefix: 'schedules/nightly' };

  it('lays export files out under the tenant, the schedule prefix and the export, with deterministic part names', () => {
    expect(partKey(at, 'Observation', 3, 12)).toBe('acme/job1/Observation-0003-0012.ndjson');
    expect(partKey(scheduled, 'Observation', 0, 1, true)).toBe('acme/schedules/nightly/job1/Observation-deleted-0000-0001.ndjson');
    expect(errorFileKey(at)).toBe('acme/job1/OperationOutcome-errors.ndjson');
    expect(latestPointerKey('acme', 'schedules/nightly')).toBe('acme/schedules/nightly/latest.json');
  });

  it('maps a download URL path back to the same key', () => {
    const key = partKey(scheduled, 'Patient', 0, 0);
    const [exportId, file] = downloadPath(key).split('/');
    expect(exportId).toBe('job1');
    expect(exportFileKey(scheduled, file)).toBe(key);
  });

  it('finds a stored async response and its status among the request directory keys', () => {
    const keys = [asyncRequestKey('acme', 'r1'), asyncResponseKey('acme', 'r1', 409)];
    expect(storedAsyncResponse(keys)).toEqual({ responseKey: 'acme/async-r1/response-409.json', httpStatus: 409 });
    expect(storedAsyncResponse([asyncRequestKey('acme', 'r1')])).toBeUndefined();
  });
});
