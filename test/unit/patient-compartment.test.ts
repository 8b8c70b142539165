import { elementPathsOf, patientCompartmentPaths, patientCompartmentsOf } from '../../src/fhir/patient-compartment';
import { patientCompartmentDefinition } from '../../src/fhir/definitions';

describe('patient compartment', () => {
  it('compiles a path for every parameter of every resource type in the published CompartmentDefinition', () => {
    const paths = patientCompartmentPaths();
    const withParams = patientCompartmentDefinition().resource.filter((r) => (r.param ?? []).some((p) => p !== '{def}'));
    expect(withParams.length).toBeGreaterThan(60);
    for (const { code } of withParams) expect(paths.get(code)?.length).toBeGreaterThan(0);
    expect(paths.get('Observation')).toEqual(expect.arrayContaining([['subject'], ['performer']]));
    expect(paths.get('AuditEvent')).toEqual(expect.arrayContaining([['agent', 'who'], ['entity', 'what']]));
  });

  it('reads the where(resolve() is Patient) form as a path', () => {
    expect(elementPathsOf('Condition.subject.where(resolve() is Patient) | Goal.subject', 'Condition')).toEqual([['subject']]);
  });

  it('puts a Patient in its own compartment and follows Patient.link', () => {
    expect(
      patientCompartmentsOf({ resourceType: 'Patient', id: 'a', link: [{ other: { reference: 'Patient/b' } }] } as never).sort(),
    ).toEqual(['a', 'b']);
  });

  it.each([
    ['Observation subject', { resourceType: 'Observation', subject: { reference: 'Patient/p1' } }, ['p1']],
    ['Observation performer (array)', { resourceType: 'Observation', performer: [{ reference: 'Practitioner/x' }, { reference: 'Patient/p2' }] }, ['p2']],
    ['Encounter subject, absolute URL', { resourceType: 'Encounter', subject: { reference: 'https://ehr.example/fhir/Patient/p3' } }, ['p3']],
    ['AllergyIntolerance patient + asserter', { resourceType: 'AllergyIntolerance', patient: { reference: 'Patient/p4' }, asserter: { reference: 'Patient/p5' } }, ['p4', 'p5']],
    ['AuditEvent nested agent.who', { resourceType: 'AuditEvent', agent: [{ who: { reference: 'Patient/p6' } }] }, ['p6']],
    ['CareTeam participant.member', { resourceType: 'CareTeam', participant: [{ member: { reference: 'Patient/p7' } }] }, ['p7']],
    ['versioned reference', { resourceType: 'Condition', subject: { reference: 'Patient/p8/_history/2' } }, ['p8']],
    ['a Group subject is not a patient', { resourceType: 'Observation', subject: { reference: 'Group/g1' } }, []],
    ['a type outside the compartment', { resourceType: 'Organization', partOf: { reference: 'Patient/p9' } }, []],
  ])('%s', (_name, resource, expected) => {
    expect(patientCompartmentsOf(resource as never).sort()).toEqual(expected);
  });
});
