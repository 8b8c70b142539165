import { keptElements, parseElements, subsetResource, SUBSETTED_TAG } from '../../src/fhir/elements';

describe('_elements', () => {
  it('parses Type.element and bare element, and names every value that is not a root element', () => {
    const { selection, problems } = parseElements(['Observation.value', 'status', 'Patient.birthDate', 'Patient.nope', 'Patient.name.given', 'Nope.x', 'zzz'], ['Observation', 'Patient']);
    expect(selection).toEqual({ all: ['status'], byType: { Observation: ['value'], Patient: ['birthDate'] } });
    expect(problems.map((p) => p.value)).toEqual(['Patient.nope', 'Patient.name.given', 'Nope.x', 'zzz']);
    expect(problems[0].reason).toBe('nope is not a root element of Patient');
  });

  it('keeps the listed elements plus every mandatory one from the StructureDefinition', () => {
    // Observation.status and Observation.code are 1..1 in R4.
    const kept = keptElements({ all: ['subject'], byType: { Observation: ['valueQuantity'] } }, 'Observation')!;
    expect(kept).toEqual(expect.arrayContaining(['resourceType', 'id', 'meta', 'status', 'code', 'subject', 'valueQuantity', '_status']));
    expect(kept).not.toContain('valueString');
    expect(kept).not.toContain('effectiveDateTime');
    // A bare choice name keeps every type of the choice.
    expect(keptElements({ all: ['value'], byType: {} }, 'Observation')).toEqual(expect.arrayContaining(['valueQuantity', 'valueString', 'valueCodeableConcept']));
    // Group.type and Group.actual are mandatory.
    expect(keptElements({ all: ['name'], byType: {} }, 'Group')).toEqual(expect.arrayContaining(['type', 'actual', 'name']));
  });

  it('leaves a type whole when nothing in the selection applies to it', () => {
    expect(keptElements({ all: [], byType: { Patient: ['name'] } }, 'Observation')).toBeUndefined();
    expect(keptElements(undefined, 'Observation')).toBeUndefined();
  });

  it('drops other root elements and tags the resource SUBSETTED once', () => {
    const observation = {
      resourceType: 'Observation',
      id: 'o1',
      meta: { versionId: '2', lastUpdated: '2024-01-01T00:00:00Z', tag: [{ system: 's', code: 't' }] },
      status: 'final',
      code: { text: 'weight' },
      subject: { reference: 'Patient/p1' },
      effectiveDateTime: '2024-01-01',
      valueQuantity: { value: 70 },
      note: [{ text: 'x' }],
    };
    const keep = new Set(keptElements({ all: ['valueQuantity'], byType: {} }, 'Observation'));
    const subset = subsetResource(observation, keep);
    expect(subset).toEqual({
      resourceType: 'Observation',
      id: 'o1',
      meta: { versionId: '2', lastUpdated: '2024-01-01T00:00:00Z', tag: [{ system: 's', code: 't' }, SUBSETTED_TAG] },
      status: 'final',
      code: { text: 'weight' },
      valueQuantity: { value: 70 },
    });
    expect(subsetResource(subset, keep)).toEqual(subset);
  });
});
