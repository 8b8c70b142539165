import { OperationOutcomeError } from '../../src/fhir/outcome-error';
import { parseViewRunRequest, partsFromBody, partsFromQuery } from '../../src/views/run-request';

const view = { resourceType: 'ViewDefinition', resource: 'Patient', select: [{ column: [{ name: 'id', path: 'id' }] }] };
const body = (...parameter: unknown[]) => ({ resourceType: 'Parameters', parameter });

function refused(run: () => unknown): { diagnostics: string; expression?: string[] } {
  try {
    run();
  } catch (err) {
    if (err instanceof OperationOutcomeError) return err.issues[0];
    throw err;
  }
  throw new Error('accepted');
}

describe('$sql-run parameters', () => {
  it('reads an inline view with inline data, format and limit (and the earlier viewResource name)', () => {
    const request = parseViewRunRequest(partsFromBody(body({ name: 'viewResource', resource: view }, { name: 'resource', resource: { resourceType: 'Patient', id: 'a' } }, { name: '_format', valueCode: 'csv' }, { name: 'header', valueBoolean: false }, { name: '_limit', valueInteger: 5 })));
    expect(request).toMatchObject({ subject: { resource: view }, resources: [{ id: 'a' }], format: 'csv', header: false, limit: 5 });
  });

  it('reads stored subjects by reference, canonical (url|version) or the URL, with patient, group and _since scoping', () => {
    expect(parseViewRunRequest(partsFromQuery({ subjectReference: 'ViewDefinition/v1', patient: 'Patient/p1', _since: '2024-01-01T00:00:00Z' })).subject).toEqual({ id: 'v1', type: 'ViewDefinition' });
    expect(parseViewRunRequest(partsFromQuery({ subjectReference: 'Library/q1' })).subject).toEqual({ id: 'q1', type: 'Library' });
    expect(parseViewRunRequest(partsFromQuery({ subjectCanonical: 'http://x.org/v|2', group: 'Group/g' }))).toMatchObject({ subject: { url: 'http://x.org/v', version: '2' }, groupId: 'g' });
    expect(parseViewRunRequest([], { id: 'v9', type: 'ViewDefinition' }).subject).toEqual({ id: 'v9', type: 'ViewDefinition' });
    expect(parseViewRunRequest([], { id: 'q9', type: 'Library' }).subject).toEqual({ id: 'q9', type: 'Library' });
    // $sqlquery-run's names are the same parameters.
    expect(parseViewRunRequest(partsFromQuery({ queryReference: 'Library/q2', _format: 'fhir' }))).toMatchObject({ subject: { id: 'q2', type: 'Library' }, format: 'fhir' });
    expect(parseViewRunRequest(partsFromQuery({ queryCanonical: 'http://x.org/q|1' })).subject).toEqual({ url: 'http://x.org/q', version: '1' });
  });

  it.each([
    ['no subject', [], /Name the ViewDefinition/],
    ['two subjects', [{ name: 'subjectReference', text: 'ViewDefinition/a' }, { name: 'subjectCanonical', text: 'http://x' }], /exactly one/],
    ['an unknown parameter', [{ name: 'source', text: 'x' }], /Unknown parameter source/],
    ['an unknown format', [{ name: 'subjectReference', text: 'ViewDefinition/a' }, { name: '_format', text: 'xml' }], /_format/],
    ['a bad limit', [{ name: 'subjectReference', text: 'ViewDefinition/a' }, { name: '_limit', text: '0' }], /_limit/],
    ['a patient that is not a Patient reference', [{ name: 'subjectReference', text: 'ViewDefinition/a' }, { name: 'patient', text: 'Group/x' }], /patient must be a reference/],
    ['a reference to another type', [{ name: 'subjectReference', text: 'Patient/a' }], /ViewDefinition/],
    ['scoping inline data', [{ name: 'subjectResource', resource: view }, { name: 'resource', resource: { resourceType: 'Patient' } }, { name: '_since', text: '2024-01-01T00:00:00Z' }], /do not apply to inline/],
  ])('refuses %s with a 400 naming it', (_label, parts, message) => {
    expect(refused(() => parseViewRunRequest(parts)).diagnostics).toMatch(message);
  });

  it('refuses a subject that is neither a ViewDefinition nor a Library as not supported, and a body that is not Parameters', () => {
    expect(refused(() => parseViewRunRequest(partsFromBody(body({ name: 'subjectResource', resource: { resourceType: 'Measure' } })))).diagnostics).toMatch(/only ViewDefinitions and SQLQuery or SQLView Libraries/);
    expect(parseViewRunRequest(partsFromBody(body({ name: 'subjectResource', resource: { resourceType: 'Library' } }))).subject).toEqual({ resource: { resourceType: 'Library' } });
    expect(refused(() => partsFromBody({ resourceType: 'Bundle' })).diagnostics).toMatch(/Parameters/);
  });
});
