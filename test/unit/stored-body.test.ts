import { sameContent } from '../../src/store/content-hash';
import { storedBody } from '../../src/store/stored-body';

describe('storedBody', () => {
  const patient = { resourceType: 'Patient', active: true, id: 'p1', meta: { profile: ['http://example.org/p'], versionId: '9', lastUpdated: '2020-01-01T00:00:00Z' }, gender: 'female' };

  it('renders resourceType, id and meta first, with the store versionId and lastUpdated leading meta', () => {
    const body = storedBody(patient).render('3', '2026-01-02T03:04:05.678Z');
    expect(body).toBe(
      '{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","lastUpdated":"2026-01-02T03:04:05.678Z","profile":["http://example.org/p"]},"active":true,"gender":"female"}',
    );
    expect(JSON.parse(body)).toEqual({ ...patient, meta: { profile: ['http://example.org/p'], versionId: '3', lastUpdated: '2026-01-02T03:04:05.678Z' } });
  });

  it('renders a resource without meta or other elements', () => {
    expect(storedBody({ resourceType: 'Basic', id: 'b' }).render('1', '2026-01-01T00:00:00.000Z')).toBe(
      '{"resourceType":"Basic","id":"b","meta":{"versionId":"1","lastUpdated":"2026-01-01T00:00:00.000Z"}}',
    );
  });

  it('fingerprints content only: the store meta does not count, everything else does', () => {
    const hash = storedBody(patient).hash;
    const { versionId: _v, lastUpdated: _l, ...otherMeta } = patient.meta;
    expect(storedBody({ ...patient, meta: otherMeta }).hash.equals(hash)).toBe(true);
    expect(storedBody({ ...patient, meta: { ...patient.meta, versionId: '10' } }).hash.equals(hash)).toBe(true);
    expect(storedBody({ ...patient, gender: 'male' }).hash.equals(hash)).toBe(false);
    expect(storedBody({ ...patient, meta: { ...patient.meta, profile: [] } }).hash.equals(hash)).toBe(false);
    expect(storedBody({ ...patient, id: 'p2' }).hash.equals(hash)).toBe(false);
  });

  it('leaves key order to sameContent, which ignores it and the store meta', () => {
    const body = storedBody(patient).render('1', '2026-01-01T00:00:00.000Z');
    expect(sameContent(body, { gender: 'female', resourceType: 'Patient', id: 'p1', active: true, meta: { profile: ['http://example.org/p'] } })).toBe(true);
    expect(sameContent(body, { ...patient, active: false })).toBe(false);
  });
});
