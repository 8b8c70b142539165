import { generatePopulation } from '../../src/generate/population';
import { checkResource } from '../../src/fhir/resource-validation';

describe('generatePopulation', () => {
  const resources = [...generatePopulation({ patients: 20, seed: 7 })];

  it('is deterministic for a seed and differs across seeds', () => {
    expect([...generatePopulation({ patients: 20, seed: 7 })]).toEqual(resources);
    expect([...generatePopulation({ patients: 20, seed: 8 })][0]).not.toEqual(resources[0]);
  });

  it('makes a few hundred resources per patient of the expected types', () => {
    const byType: Record<string, number> = {};
    for (const r of resources) byType[r.resourceType] = (byType[r.resourceType] ?? 0) + 1;
    expect(byType.Patient).toBe(20);
    expect(byType.Group).toBe(1);
    expect(resources.length / 20).toBeGreaterThan(150);
    expect(resources.length / 20).toBeLessThan(400);
    for (const type of ['Encounter', 'Observation', 'Condition', 'MedicationRequest', 'Procedure', 'Immunization', 'DiagnosticReport', 'AllergyIntolerance', 'Practitioner', 'Organization', 'Location']) {
      expect(byType[type]).toBeGreaterThan(0);
    }
  });

  it('only makes valid resources with unique ids whose references all resolve', () => {
    const keys = new Set<string>();
    for (const r of resources) {
      checkResource(r);
      const key = `${r.resourceType}/${r.id}`;
      expect(keys.has(key)).toBe(false);
      keys.add(key);
    }
    const references = JSON.stringify(resources).match(/"reference":"[^"]+"/g) ?? [];
    expect(references.length).toBeGreaterThan(resources.length);
    for (const r of references) expect(keys.has(r.slice(13, -1))).toBe(true);
  });

  it('puts every patient in the Group', () => {
    const group = resources.find((r) => r.resourceType === 'Group')!;
    const patients = resources.filter((r) => r.resourceType === 'Patient').map((p) => `Patient/${p.id}`);
    expect((group.member as Array<{ entity: { reference: string } }>).map((m) => m.entity.reference)).toEqual(patients);
  });
});
