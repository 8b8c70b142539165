import { buildManifest, progressText } from '../../src/fhir/manifest';
import type { ExportStatus } from '../../workflows/types';

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

  it('lists deletion files under deleted only when there are some', () => {
    const withDeletions = { ...status, deleted: [{ type: 'Bundle', key: 'job/Observation-deleted-0000-0000.ndjson', count: 2, bytes: 200 }] };
    expect(buildManifest(withDeletions, (key) => `http://x/${key}`).deleted).toEqual([
      { type: 'Bundle', url: 'http://x/job/Observation-deleted-0000-0000.ndjson', count: 2 },
    ]);
    expect('deleted' in buildManifest(status, (key) => key)).toBe(false);
  });

  it('describes progress in under 100 characters', () => {
    const text = progressText({ ...status, phase: 'exporting' });
    expect(text).toBe('61% (8 of 13 resources, 1 of 3 partitions)');
    expect(text.length).toBeLessThan(100);
    expect(progressText({ ...status, phase: 'planning' })).toBe('planning');
  });
});
