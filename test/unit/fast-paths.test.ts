/**
 * The fast paths answer exactly what the FHIRPath engine answers, on generated resources of
 * several types, and leave to the engine what they cannot answer the same way.
 */
import type { Model } from 'fhirpath';
import { generatePopulation } from '../../src/generate/population';
import { compileExpression, plainValues } from '../../src/views/fhirpath-engine';
import { compileFastPath, SEVERAL } from '../../src/views/fast-paths';

const r4 = require('fhirpath/fhir-context/r4') as Model;

const population = [...generatePopulation({ patients: 5, seed: 12 })];
const ofType = (type: string) => population.filter((r) => r.resourceType === type);

const CASES: Array<[string, string]> = [
  ['Observation', 'id'],
  ['Observation', 'getResourceKey()'],
  ['Observation', 'subject.getReferenceKey(Patient)'],
  ['Observation', 'subject.getReferenceKey(Group)'],
  ['Observation', 'subject.getReferenceKey()'],
  ['Observation', 'code.coding.first().system'],
  ['Observation', 'code.coding.code'],
  ['Observation', 'value.ofType(Quantity).value'],
  ['Observation', 'value.ofType(Quantity).unit'],
  ['Observation', 'value.ofType(CodeableConcept).text'],
  ['Observation', 'effective.ofType(dateTime)'],
  ['Observation', 'category.coding.exists()'],
  ['Observation', 'meta.lastUpdated'],
  ['Patient', 'name.given'],
  ['Patient', 'name.first().family'],
  ['Patient', 'address.city'],
  ['Patient', 'telecom.exists()'],
  ['Patient', 'birthDate'],
  ['Encounter', 'period.start'],
  ['Encounter', 'participant.individual.getReferenceKey(Practitioner)'],
];

describe('FHIRPath fast paths', () => {
  it.each(CASES)('%s %s: the same values as the engine', (type, expression) => {
    const fast = compileFastPath(expression, type, r4);
    expect(fast).toBeDefined();
    const engine = compileExpression(expression, false); // no base type: the engine itself
    const resources = ofType(type);
    expect(resources.length).toBeGreaterThan(0);
    for (const resource of resources) {
      const values = plainValues(engine(resource, 0));
      expect(plainValues(fast!(resource, 0))).toEqual(values);
      // The lone value a plain column takes: none, the one value, or SEVERAL.
      expect(fast!.one(resource)).toEqual(values.length === 0 ? undefined : values.length === 1 ? values[0] : SEVERAL);
    }
  });

  it.each([
    ['Observation', 'value'], // a choice element without ofType
    ['Observation', 'value.ofType(Base64Binary)'], // a type the element cannot have
    ['Observation', "code.coding.where(system = 'x')"],
    ['Observation', 'status = %s'],
    ['Observation', 'nonsense.path'],
    ['Observation', 'Observation.id'],
  ])('leaves %s %s to the engine', (type, expression) => {
    expect(compileFastPath(expression, type, r4)).toBeUndefined();
  });

  it('is not used without a known base type (a forEach whose contents the engine needs hands its nodes typed)', () => {
    expect(compileFastPath('family', undefined, r4)).toBeUndefined();
  });
});
