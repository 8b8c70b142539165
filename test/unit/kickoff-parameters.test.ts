import { checkAccept, parametersFromBody, parametersFromQuery, parseInstant, parseKickoffParameters, parsePrefer } from '../../src/fhir/kickoff-parameters';
import { OperationOutcomeError } from '../../src/fhir/outcome-error';

const params = (entries: Record<string, string[]>) => new Map(Object.entries(entries));

/** The refusal `fn` throws, with the HTTP status its issue code answers with. */
function refusal(fn: () => unknown): OperationOutcomeError & { status: number } {
  try {
    fn();
  } catch (err) {
    if (err instanceof OperationOutcomeError) return err;
    throw err;
  }
  throw new Error('expected an OperationOutcomeError');
}

describe('kick-off parameters', () => {
  it('joins repeated and comma-separated _type values, without duplicates', () => {
    expect(parseKickoffParameters(params({ _type: ['Patient,Observation', 'Encounter', 'Patient'] }), 'strict', 'system').types).toEqual([
      'Patient',
      'Observation',
      'Encounter',
    ]);
  });

  it('reads STU4 ($export-v4) lists one value per parameter and refuses a comma-delimited one, naming the parameter', () => {
    expect(parseKickoffParameters(params({ _type: ['Patient', 'Observation'] }), 'strict', 'system', 'stu4').types).toEqual(['Patient', 'Observation']);
    const err = refusal(() => parseKickoffParameters(params({ _type: ['Patient,Observation'] }), 'strict', 'system', 'stu4'));
    expect([err.status, err.issues[0].expression, err.issues[0].diagnostics]).toEqual([400, ['_type'], expect.stringContaining('repeat _type')]);
    // A _typeFilter value is one query, commas (search OR) and all.
    const filters = parseKickoffParameters(params({ _typeFilter: ['Observation?status=final,amended'] }), 'strict', 'system', 'stu4').typeFilters;
    expect(filters).toEqual({ Observation: ['status=final,amended'] });
  });

  it('reads includeAssociatedData as a Coding of the IG code system (STU4), and refuses a code of another system', () => {
    const body = (valueCoding: object) => parametersFromBody({ resourceType: 'Parameters', parameter: [{ name: 'includeAssociatedData', valueCoding }] });
    const coded = body({ system: 'http://hl7.org/fhir/uv/bulkdata/CodeSystem/include-associated-data', code: 'LatestProvenanceResources' });
    expect(parseKickoffParameters(coded, 'strict', 'patient', 'stu4').associatedProvenance).toBe('latest');
    expect(parseKickoffParameters(body({ code: 'RelevantProvenanceResources' }), 'strict', 'patient', 'stu4').associatedProvenance).toBe('relevant');
    const other = refusal(() => parseKickoffParameters(body({ system: 'http://example.org/cs', code: 'LatestProvenanceResources' }), 'strict', 'patient', 'stu4'));
    expect([other.status, other.issues[0].expression]).toEqual([400, ['includeAssociatedData']]);
  });

  it.each([
    ['2024-01-31T12:00:00Z', '2024-01-31T12:00:00.000Z'],
    ['2024-01-31T12:00:00+01:00', '2024-01-31T11:00:00.000Z'],
    ['2024-01-31T12:00:00-05:00', '2024-01-31T17:00:00.000Z'],
    ['2024-01-31T12:00:00.123456Z', '2024-01-31T12:00:00.123Z'],
    ['2024-01-31T12:00:00 01:00', '2024-01-31T11:00:00.000Z'], // "+" decoded as a space by the query parser
  ])('reads the instant %s', (value, expected) => {
    expect(parseInstant(value, '_since')).toBe(expected);
  });

  it.each(['2024-01-31', '2024-01-31T12:00:00', 'yesterday', '2024-13-31T12:00:00Z', '2024-01-31T25:00:00Z'])('refuses the instant %s', (value) => {
    expect(refusal(() => parseInstant(value, '_since')).issues[0].expression).toEqual(['_since']);
  });

  it('reads _elements against the exported types: unknown elements refused under strict, dropped and reported under lenient', () => {
    const ok = parseKickoffParameters(params({ _type: ['Observation'], _elements: ['Observation.valueQuantity,status', 'subject'] }), 'strict', 'system');
    expect(ok.elements).toEqual({ all: ['status', 'subject'], byType: { Observation: ['valueQuantity'] } });

    const err = refusal(() => parseKickoffParameters(params({ _type: ['Observation'], _elements: ['birthDate'] }), 'strict', 'system'));
    expect(err.issues[0].expression).toEqual(['_elements']);
    expect(err.issues[0].diagnostics).toContain('birthDate is not a root element of Observation');

    const lenient = parseKickoffParameters(params({ _elements: ['Patient.nope,Patient.gender'] }), 'lenient', 'patient');
    expect(lenient.elements).toEqual({ all: [], byType: { Patient: ['gender'] } });
    expect(lenient.lenientIssues).toHaveLength(1);
    expect(lenient.lenientIssues[0].diagnostics).toContain('Patient.nope');
    expect(parseKickoffParameters(params({ _elements: ['Patient.nope'] }), 'lenient', 'system').elements).toBeUndefined();
  });

  it('refuses _until before _since, naming _until', () => {
    const err = refusal(() => parseKickoffParameters(params({ _since: ['2024-02-01T00:00:00Z'], _until: ['2024-01-01T00:00:00Z'] }), 'strict', 'system'));
    expect(err.issues[0].expression).toEqual(['_until']);
  });

  it('accepts the three NDJSON spellings of _outputFormat and refuses others', () => {
    for (const f of ['application/fhir+ndjson', 'application/ndjson', 'ndjson']) {
      expect(() => parseKickoffParameters(params({ _outputFormat: [f] }), 'strict', 'system')).not.toThrow();
    }
    expect(refusal(() => parseKickoffParameters(params({ _outputFormat: ['text/csv'] }), 'strict', 'system')).status).toBe(400);
  });

  it('refuses unsupported parameters under strict handling and reports them under lenient', () => {
    expect(refusal(() => parseKickoffParameters(params({ organizeOutputBy: ['Organization'] }), 'strict', 'system')).issues[0]).toMatchObject({
      code: 'not-supported',
      expression: ['organizeOutputBy'],
    });
    const lenient = parseKickoffParameters(params({ _typeFilter: ['x'], _bogus: ['1'] }), 'lenient', 'system');
    expect(lenient.lenientIssues.map((i) => i.expression)).toEqual([['_bogus'], ['_typeFilter']]);
    expect(lenient.typeFilters).toBeUndefined();
  });

  it('reads includeAssociatedData: the least restrictive of several values wins', () => {
    const read = (values: string[]) => parseKickoffParameters(params({ includeAssociatedData: values }), 'strict', 'system').associatedProvenance;
    expect(read(['LatestProvenanceResources'])).toBe('latest');
    expect(read(['LatestProvenanceResources,RelevantProvenanceResources'])).toBe('relevant');
    expect(read(['RelevantProvenanceResources', 'LatestProvenanceResources'])).toBe('relevant');
  });

  it('refuses patient at system level even when lenient', () => {
    expect(refusal(() => parseKickoffParameters(params({ patient: ['Patient/1'] }), 'lenient', 'system')).issues[0].expression).toEqual(['patient']);
  });

  it('reads Prefer as a list', () => {
    expect(parsePrefer('respond-async')).toBe('strict');
    expect(parsePrefer('respond-async, handling=lenient')).toBe('lenient');
    expect(parsePrefer('handling=strict; respond-async')).toBe('strict');
    expect(refusal(() => parsePrefer(undefined)).issues[0].expression).toEqual(['Prefer']);
    expect(refusal(() => parsePrefer('handling=lenient')).status).toBe(400);
  });

  it('requires Accept to allow application/fhir+json', () => {
    expect(() => checkAccept('application/fhir+json')).not.toThrow();
    expect(() => checkAccept('application/json, application/fhir+json;q=0.9')).not.toThrow();
    expect(refusal(() => checkAccept(undefined)).issues[0].expression).toEqual(['Accept']);
    expect(refusal(() => checkAccept('*/*')).status).toBe(400);
  });

  it('reads a Parameters body: strings, instants and references', () => {
    const raw = parametersFromBody({
      resourceType: 'Parameters',
      parameter: [
        { name: '_type', valueString: 'Patient' },
        { name: '_type', valueString: 'Observation' },
        { name: '_since', valueInstant: '2024-01-01T00:00:00Z' },
        { name: 'patient', valueReference: { reference: 'Patient/7' } },
      ],
    });
    expect([...raw]).toEqual([
      ['_type', ['Patient', 'Observation']],
      ['_since', ['2024-01-01T00:00:00Z']],
      ['patient', ['Patient/7']],
    ]);
    expect(refusal(() => parametersFromBody({ resourceType: 'Bundle' })).status).toBe(400);
    expect(refusal(() => parametersFromBody({ resourceType: 'Parameters', parameter: [{ name: '_type' }] })).issues[0].expression).toEqual(['_type']);
  });

  it('refuses a Parameters body whose parameter is not an array of objects with a 400, not a crash', () => {
    for (const parameter of [{}, 'x', 3, [null], [[]], ['_type']]) {
      const refused = refusal(() => parametersFromBody({ resourceType: 'Parameters', parameter }));
      expect(refused.status).toBe(400);
      expect(refused.issues[0].diagnostics).toMatch(/parameter/);
    }
  });

  it('reads a query with repeated parameters', () => {
    expect([...parametersFromQuery({ _type: ['A', 'B'], _since: 'x' })]).toEqual([
      ['_type', ['A', 'B']],
      ['_since', ['x']],
    ]);
  });
});
