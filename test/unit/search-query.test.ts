import { parseSearchQuery, parseTypedSearch, SearchQueryError, type Pushdown, type SearchQuery } from '../../src/fhir/search/query';
import { pushdownSql } from '../../src/store/search-sql';

const observation = {
  resourceType: 'Observation',
  id: 'o1',
  meta: { lastUpdated: '2024-03-01T10:00:00.000Z', tag: [{ system: 'urn:tags', code: 'research' }], profile: ['http://example.org/StructureDefinition/vital'] },
  status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
  code: { coding: [{ system: 'http://loinc.org', code: '29463-7', display: 'Body Weight' }], text: 'Weight' },
  subject: { reference: 'Patient/p1' },
  encounter: { reference: 'http://other.example/fhir/Encounter/e1' },
  effectiveDateTime: '2020-05-01T10:00:00Z',
  valueQuantity: { value: 72.5, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
};
const patient = {
  resourceType: 'Patient',
  id: 'p1',
  identifier: [{ system: 'urn:mrn', value: 'A-1', type: { text: 'Medical record number' } }],
  name: [{ family: 'Müller', given: ['Anna', 'Maria'] }],
  telecom: [{ system: 'phone', value: '555-0100' }, { system: 'email', value: 'anna@example.org' }],
  gender: 'female',
  birthDate: '1980-02-03',
  address: [{ city: 'Zürich', postalCode: '8001' }],
  deceasedBoolean: false,
};
const period = { resourceType: 'Encounter', id: 'e1', status: 'finished', class: { code: 'AMB' }, period: { start: '2021-01-10T08:00:00Z', end: '2021-01-12T08:00:00Z' } };

const matches = (query: SearchQuery, resource: object) => query.clauses.every((c) => c.matches(resource));
const test = (type: string, q: string, resource: object) => matches(parseSearchQuery(type, q), resource);

describe('FHIR search on resources (R4 SearchParameter definitions)', () => {
  it.each([
    ['status=final', true],
    ['status=amended,final', true], // comma: OR
    ['status=amended', false],
    ['status:not=amended', true],
    ['status:not=final', false],
    ['code=http://loinc.org|29463-7', true],
    ['code=29463-7', true],
    ['code=http://snomed.info/sct|29463-7', false],
    ['code=|29463-7', false], // |code: only codes without a system
    ['code=http://loinc.org|', true],
    ['code:text=weig', true],
    ['code:text=BODY', true],
    ['code:text=height', false],
    ['category=vital-signs', true],
    ['_tag=urn:tags|research', true],
    ['_id=o1,o2', true],
    ['_id=o2', false],
  ])('token: Observation?%s → %s', (q, expected) => expect(test('Observation', q, observation)).toBe(expected));

  it.each([
    ['name=mull', true], // starts with, accent- and case-insensitive
    ['name=anna', true],
    ['name=ller', false],
    ['name:contains=ller', true],
    ['family:exact=Müller', true],
    ['family:exact=müller', false],
    ['family:exact=Mull', false],
    ['address-city=zur', true],
    ['address-postalcode=8001', true],
    ['identifier=urn:mrn|A-1', true],
    ['identifier=A-1', true],
    ['identifier=urn:other|A-1', false],
    ['identifier:text=medical', true],
    ['phone=555-0100', true],
    ['email=anna@example.org', true],
    ['telecom=555-0100', true],
    ['gender=female', true],
    ['gender:not=female', false],
    ['birthdate=1980', true],
    ['birthdate=1980-02', true],
    ['birthdate=1980-02-04', false],
    ['birthdate=ge1980-02-03', true],
    ['birthdate=gt1980-02-03', false],
    ['birthdate=lt1990-01-01', true],
    ['birthdate=le1980-02-03', true],
    ['birthdate=ne1980-02-03', false],
    ['birthdate=sa1979-12-31', true],
    ['birthdate=eb1980-02-03', false],
    ['birthdate=ap1980-03-01', true],
    ['deceased=false', true],
    ['general-practitioner:missing=true', true],
    ['name:missing=false', true],
    ['name:missing=true', false],
  ])('string, token, date: Patient?%s → %s', (q, expected) => expect(test('Patient', q, patient)).toBe(expected));

  it.each([
    ['subject=Patient/p1', true],
    ['subject=p1', true],
    ['subject:Patient=p1', true],
    ['subject=Patient/p2', false],
    ['patient=Patient/p1', true],
    ['subject:missing=false', true],
    ['focus:missing=true', true],
    ['encounter=Encounter/e1', true],
    ['encounter=http://other.example/fhir/Encounter/e1', true],
    ['encounter=http://elsewhere.example/fhir/Encounter/e1', false],
    ['date=2020-05-01', true],
    ['date=2020-05-01T10:00:00Z', true],
    ['date=2020-05-01T12:00:00%2B02:00', true], // the same instant, + encoded
    ['date=gt2020-05-01T10:00:00Z', false],
    ['date=ge2020-05-01T10:00:00Z', true],
    ['value-quantity=72.5', true],
    ['value-quantity=72.54', false], // 72.5 is outside [72.535, 72.545)
    ['value-quantity=72', false],
    ['value-quantity=gt70', true],
    ['value-quantity=lt70', false],
    ['value-quantity=ge72.5|http://unitsofmeasure.org|kg', true],
    ['value-quantity=72.5|http://unitsofmeasure.org|g', false],
    ['value-quantity=72.5||kg', true],
    ['value-quantity=ap75', true],
    ['value-quantity=ap90', false],
    ['_profile=http://example.org/StructureDefinition/vital', true],
    ['_profile:below=http://example.org/', true],
    ['_profile=http://example.org/', false],
    ['_lastUpdated=gt2024-01-01', true],
    ['_lastUpdated=lt2024-01-01', false],
    ['status=final&code=29463-7', true], // AND across parameters
    ['status=final&code=8302-2', false],
    ['code=8302-2&code=29463-7', false], // a repeated parameter is AND too
  ])('reference, date, quantity, uri: Observation?%s → %s', (q, expected) => expect(test('Observation', q, observation)).toBe(expected));

  it.each([
    ['date=2021-01-11', false], // the stay is longer than the day: eq needs the whole period inside
    ['date=2021-01', true],
    ['date=gt2021-01-11', true],
    ['date=lt2021-01-11', true],
    ['date=sa2021-01-09', true],
    ['date=sa2021-01-10', false],
    ['date=eb2021-01-13', true],
    ['date=eb2021-01-12', false],
  ])('periods: Encounter?%s → %s', (q, expected) => expect(test('Encounter', q, period)).toBe(expected));

  it.each([
    ['Observation?_include=Observation:subject', '_include'],
    ['Observation?_sort=date', '_sort'],
    ['Observation?_count=10', '_count'],
    ['Observation?_has:Provenance:target:agent=x', '_has'],
    ['Observation?nonsense=1', 'nonsense'],
    ['Observation?status:exact=final', 'status'],
    ['Observation?subject.name=x', 'subject.name'],
    ['Observation?date=yesterday', 'date'],
    ['Observation?date=2020-13-01', 'date'],
    ['Observation?value-quantity=heavy', 'value-quantity'],
    ['Observation?subject:missing=maybe', 'subject'],
    ['Observation?subject=Organization/o1', 'subject'],
    ['Observation?code-value-quantity=x', 'code-value-quantity'],
    ['Observation?status=', 'status'],
    ['Observation?status=a,,b', 'status'],
    ['Observation', undefined],
    ['Observation?', undefined],
    ['Observation?status=%E0%A4%A', undefined],
  ])('refuses %s with a message naming the problem', (text, parameter) => {
    let error: unknown;
    try {
      parseTypedSearch(text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SearchQueryError);
    expect((error as SearchQueryError).parameter).toBe(parameter);
    expect((error as Error).message.length).toBeGreaterThan(10);
  });

  it('pushes _id and _lastUpdated down as SQL, and nothing else', () => {
    const sqlOf = (c: { pushdown?: Pushdown }) => c.pushdown && pushdownSql(c.pushdown);
    const query = parseSearchQuery('Observation', '_id=a,b&_lastUpdated=ge2024-01-01&_lastUpdated=lt2024-02-01T00:00:00Z&status=final');
    expect(query.clauses.map(sqlOf)).toEqual([
      "resource_versions.id IN ('a', 'b')",
      "(last_updated >= '2024-01-01T00:00:00.000Z')",
      "(last_updated < '2024-02-01T00:00:00.000Z')",
      undefined,
    ]);
    expect(parseSearchQuery('Observation', '_lastUpdated=ap2024-01-01').clauses[0].pushdown).toBeUndefined();
    expect(sqlOf(parseSearchQuery('Observation', '_id=x%27y').clauses[0])).toBe("resource_versions.id IN ('x''y')");
    // Every prefix as its interval of instants; several values OR-ed.
    expect(sqlOf(parseSearchQuery('Observation', '_lastUpdated=eq2024-01-01T00:00:00Z,ne2024-01-02T00:00:00Z').clauses[0])).toBe(
      "((last_updated >= '2024-01-01T00:00:00.000Z' AND last_updated < '2024-01-01T00:00:01.000Z') OR NOT (last_updated >= '2024-01-02T00:00:00.000Z' AND last_updated < '2024-01-02T00:00:01.000Z'))",
    );
    expect(sqlOf(parseSearchQuery('Observation', '_lastUpdated=gt2024-01-01T00:00:00Z').clauses[0])).toBe("(last_updated >= '2024-01-01T00:00:01.000Z')");
    expect(sqlOf(parseSearchQuery('Observation', '_lastUpdated=le2024-01-01T00:00:00Z').clauses[0])).toBe("(last_updated < '2024-01-01T00:00:01.000Z')");
  });
});
