import { asStu4Manifest, buildManifest, manifestPage, progressText, retryAfterSeconds } from '../../src/fhir/manifest';
import type { ExportStatus } from '../../src/contracts/bulk-export';

const status: ExportStatus = {
  exportId: 'job',
  phase: 'completed',
  request: 'http://x/fhir/$export',
  transactionTime: '2024-01-01T00:00:00.000Z',
  types: { Patient: { total: 3, exported: 3 }, Observation: { total: 10, exported: 5 } },
  deletedTypes: {},
  partitionsDone: 1,
  partitionsTotal: 3,
  output: [{ type: 'Patient', key: 'job/Patient-0000-0000.ndjson', count: 3, bytes: 30 }],
  deleted: [],
  error: [],
};

describe('manifest', () => {
  it('has the five keys, absolute URLs from the file keys, and exact counts', () => {
    expect(buildManifest(status, (key) => `http://x/fhir/bulkfiles/${key}`)).toEqual({
      transactionTime: '2024-01-01T00:00:00.000Z',
      request: 'http://x/fhir/$export',
      requiresAccessToken: true,
      output: [{ type: 'Patient', url: 'http://x/fhir/bulkfiles/job/Patient-0000-0000.ndjson', count: 3 }],
      error: [],
    });
  });

  it('serves an STU4 export its manifest: manifestType and outputFormat named, outcome for error, no request, file sizes, untyped deleted and outcome items', () => {
    const stu4 = {
      ...status,
      manifestShape: 'stu4' as const,
      deleted: [{ type: 'Bundle', key: 'job/d.ndjson', count: 2, bytes: 200 }],
      error: [{ type: 'OperationOutcome', key: 'job/e.ndjson', count: 1, bytes: 90 }],
    };
    expect(asStu4Manifest(buildManifest(stu4, (key) => `http://x/${key}`))).toEqual({
      manifestType: 'http://hl7.org/fhir/uv/bulkdata/StructureDefinition/BulkDataManifest',
      transactionTime: '2024-01-01T00:00:00.000Z',
      requiresAccessToken: true,
      outputFormat: 'application/fhir+ndjson',
      output: [{ type: 'Patient', url: 'http://x/job/Patient-0000-0000.ndjson', count: 3, fileSize: 30 }],
      deleted: [{ url: 'http://x/job/d.ndjson', count: 2, fileSize: 200 }],
      outcome: [{ url: 'http://x/job/e.ndjson', count: 1, fileSize: 90 }],
    });
    // The v2 manifest of the same export stays as it was: no sizes.
    expect(buildManifest({ ...stu4, manifestShape: undefined }, (key) => key).output[0]).toEqual({ type: 'Patient', url: 'job/Patient-0000-0000.ndjson', count: 3 });
  });

  it('lists deletion files under deleted only when there are some', () => {
    const withDeletions = { ...status, deleted: [{ type: 'Bundle', key: 'job/Observation-deleted-0000-0000.ndjson', count: 2, bytes: 200 }] };
    expect(buildManifest(withDeletions, (key) => `http://x/${key}`).deleted).toEqual([
      { type: 'Bundle', url: 'http://x/job/Observation-deleted-0000-0000.ndjson', count: 2 },
    ]);
    expect('deleted' in buildManifest(status, (key) => key)).toBe(false);
  });

  it('pages a partial manifest: full pages at once, the rest with deleted and error only when complete', () => {
    const files = Array.from({ length: 5 }, (_, i) => ({ type: 'Observation', key: `job/f${i}.ndjson`, count: 1, bytes: 10 }));
    const running = { ...status, phase: 'exporting' as const, manifestPageFiles: 2, output: files.slice(0, 3), error: [{ type: 'OperationOutcome', key: 'job/e.ndjson', count: 1, bytes: 5 }] };
    const url = (key: string) => `u/${key}`;
    const pageUrl = (n: number) => `s?page=${n}`;
    const first = manifestPage(running, 1, url, pageUrl);
    expect(first).toMatchObject({ last: false, manifest: { output: [{ url: 'u/job/f0.ndjson' }, { url: 'u/job/f1.ndjson' }], error: [], link: [{ relation: 'next', url: 's?page=2' }] } });
    expect(manifestPage(running, 2, url, pageUrl)).toBe('not-yet');

    const done = { ...running, phase: 'completed' as const, output: files };
    expect(manifestPage(done, 1, url, pageUrl)).toEqual(first);
    const last = manifestPage(done, 3, url, pageUrl);
    expect(last).toMatchObject({ last: true, manifest: { output: [{ url: 'u/job/f4.ndjson' }], error: [{ url: 'u/job/e.ndjson' }] } });
    expect((last as { manifest: { link?: unknown } }).manifest.link).toBeUndefined();
    expect(manifestPage(done, 4, url, pageUrl)).toBe('no-such-page');
  });

  it('grows Retry-After with the expected remaining time, within bounds', () => {
    const started = Date.parse('2024-01-01T00:00:00Z');
    const at = (exported: number, elapsedSeconds: number) =>
      retryAfterSeconds(
        { ...status, phase: 'exporting', startedAt: new Date(started).toISOString(), types: { Observation: { total: 1000, exported } } },
        2,
        30,
        started + elapsedSeconds * 1000,
      );
    expect(at(0, 10)).toBe(2); // no progress yet: the minimum
    expect(at(100, 10)).toBe(23); // 90 s left: about a quarter
    expect(at(500, 10)).toBe(3); // 10 s left
    expect(at(990, 10)).toBe(2); // nearly done: the minimum
    expect(at(10, 100)).toBe(30); // hours left: the maximum
    expect(retryAfterSeconds({ ...status, phase: 'planning' }, 2, 30)).toBe(2);
  });

  it('describes progress in under 100 characters', () => {
    const text = progressText({ ...status, phase: 'exporting' });
    expect(text).toBe('61% (8 of 13 resources, 1 of 3 partitions)');
    expect(text.length).toBeLessThan(100);
    expect(progressText({ ...status, phase: 'planning' })).toBe('planning');
  });
});
