import { sameContent } from '../../src/store/same-content';
import { prepareResource, renderBody } from '../../src/store/prepared-resource';

describe('prepareResource', () => {
  const patient = { resourceType: 'Patient', active: true, id: 'p1', meta: { profile: ['http://example.org/p'], versionId: '9', lastUpdated: '2020-01-01T00:00:00Z' }, gender: 'female' };
  const render = (resource: Parameters<typeof prepareResource>[0], versionId = '1') => renderBody(prepareResource(resource), versionId, '2026-01-01T00:00:00.000Z');

  it('renders resourceType, id and meta first, with the store versionId and lastUpdated leading meta', () => {
    const body = renderBody(prepareResource(patient), '3', '2026-01-02T03:04:05.678Z');
    expect(body).toBe(
      '{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","lastUpdated":"2026-01-02T03:04:05.678Z","profile":["http://example.org/p"]},"active":true,"gender":"female"}',
    );
    expect(JSON.parse(body)).toEqual({ ...patient, meta: { profile: ['http://example.org/p'], versionId: '3', lastUpdated: '2026-01-02T03:04:05.678Z' } });
  });

  it('renders a resource without meta or other elements', () => {
    expect(render({ resourceType: 'Basic', id: 'b' })).toBe('{"resourceType":"Basic","id":"b","meta":{"versionId":"1","lastUpdated":"2026-01-01T00:00:00.000Z"}}');
  });

  it('fingerprints content only: the store meta does not count, everything else does', () => {
    const hash = Buffer.from(prepareResource(patient).hash);
    const same = (resource: Parameters<typeof prepareResource>[0]) => Buffer.from(prepareResource(resource).hash).equals(hash);
    const { versionId: _v, lastUpdated: _l, ...otherMeta } = patient.meta;
    expect(same({ ...patient, meta: otherMeta })).toBe(true);
    expect(same({ ...patient, meta: { ...patient.meta, versionId: '10' } })).toBe(true);
    expect(same({ ...patient, gender: 'male' })).toBe(false);
    expect(same({ ...patient, meta: { ...patient.meta, profile: [] } })).toBe(false);
    expect(same({ ...patient, id: 'p2' })).toBe(false);
  });

  it('leaves key order to sameContent, which ignores it and the store meta', () => {
    const body = render(patient);
    expect(sameContent(body, render({ gender: 'female', resourceType: 'Patient', id: 'p1', active: true, meta: { profile: ['http://example.org/p'] } }, '7'))).toBe(true);
    expect(sameContent(body, render({ ...patient, active: false }))).toBe(false);
  });

  it('derives the index rows: compartments, referenced types, Group members, Provenance targets', () => {
    const encounter = prepareResource({
      resourceType: 'Encounter',
      id: 'e1',
      subject: { reference: 'Patient/p1' },
      participant: [{ individual: { reference: 'Practitioner/dr1' } }, { individual: { reference: 'Practitioner/dr1' } }],
      serviceProvider: { reference: 'http://other.example/fhir/Organization/o1' },
    });
    expect(encounter.compartments).toEqual(['p1']);
    expect(encounter.references).toEqual(['Practitioner/dr1', 'Organization/o1']);
    expect(prepareResource({ resourceType: 'Organization', id: 'o2', partOf: { reference: 'Organization/o1' } }).references).toEqual([]);
    const group = prepareResource({
      resourceType: 'Group',
      id: 'g',
      member: [{ entity: { reference: 'Patient/p1' }, period: { start: '2024-02' }, inactive: true }, { entity: { display: 'no reference' } }],
    });
    expect(group.members).toEqual([{ memberType: 'Patient', memberId: 'p1', periodStart: '2024-02-01T00:00:00Z', periodEnd: null, inactive: true }]);
    const provenance = prepareResource({ resourceType: 'Provenance', id: 'pv', recorded: '2024-03-04T05:06:07Z', target: [{ reference: 'Observation/o1/_history/2' }, { reference: 'Observation/o1' }] });
    expect(provenance.provenance).toEqual({ recorded: '2024-03-04T05:06:07Z', targets: ['Observation/o1'] });
  });
});
