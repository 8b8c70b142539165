import { OperationOutcomeError } from '../../src/fhir/outcome-error';
import { checkScheduleDefinition, durationSeconds, scheduledRequestPath } from '../../src/schedules/schedule-definition';

const fieldOf = (body: unknown): string | undefined => {
  try {
    checkScheduleDefinition(body);
  } catch (err) {
    if (err instanceof OperationOutcomeError && err.status === 400) return err.issues[0].expression?.[0] ?? '(none)';
    throw err;
  }
  return undefined;
};

describe('checkScheduleDefinition', () => {
  it('normalizes a full definition and parses its kick-off parameters', () => {
    const checked = checkScheduleDefinition({
      id: 'nightly',
      cron: '0 2 * * *',
      timeZone: 'Europe/Berlin',
      level: 'group',
      group: 'cohort-1',
      parameters: { _type: 'Patient,Observation', _typeFilter: 'Observation?status=final', _elements: 'id,status' },
      start: '2024-01-01T00:00:00+01:00',
      retention: '7d',
      webhook: 'https://hooks.example.org/bulk',
    });
    if (checked.kind !== 'export') throw new Error('an $export schedule');
    const { definition, request, retentionMs } = checked;
    expect(definition).toEqual({
      id: 'nightly',
      every: undefined,
      cron: '0 2 * * *',
      timeZone: 'Europe/Berlin',
      level: 'group',
      group: 'cohort-1',
      parameters: { _type: ['Patient,Observation'], _typeFilter: ['Observation?status=final'], _elements: ['id,status'] },
      start: '2023-12-31T23:00:00.000Z',
      outputPrefix: 'schedules/nightly',
      retention: '7d',
      webhook: 'https://hooks.example.org/bulk',
    });
    expect(request.types).toEqual(['Patient', 'Observation']);
    expect(request.typeFilters).toEqual({ Observation: ['status=final'] });
    expect(retentionMs).toBe(7 * 86_400_000);
    expect(scheduledRequestPath(definition)).toBe('/Group/cohort-1/$export?_type=Patient%2CObservation&_typeFilter=Observation%3Fstatus%3Dfinal&_elements=id%2Cstatus');
  });

  it('takes the id from the URL on update, and refuses a body that names another', () => {
    expect(checkScheduleDefinition({ every: '1h' }, 'from-url').definition.id).toBe('from-url');
    expect(() => checkScheduleDefinition({ id: 'other', every: '1h' }, 'from-url')).toThrow(/differs/);
  });

  it.each([
    [{ every: '1h' }, 'id'],
    [[], undefined],
    [{ id: 'x' }, 'every'],
    [{ id: 'x', every: '1h', cron: '@daily' }, 'cron'],
    [{ id: 'x', every: '90' }, 'every'],
    [{ id: 'x', cron: '* * *' }, 'cron'],
    [{ id: 'x', cron: '@daily', timeZone: 'Nowhere/Special' }, 'timeZone'],
    [{ id: 'x', every: '1h', level: 'encounter' }, 'level'],
    [{ id: 'x', every: '1h', group: 'g' }, 'group'],
    [{ id: 'x', every: '1h', parameters: { _until: '2024-01-01T00:00:00Z' } }, 'parameters._until'],
    [{ id: 'x', every: '1h', parameters: { _type: 3 } }, 'parameters._type'],
    [{ id: 'x', every: '1h', parameters: { _outputFormat: 'text/csv' } }, 'parameters._outputFormat'],
    [{ id: 'x', every: '1h', outputPrefix: 'a//b' }, 'outputPrefix'],
    [{ id: 'x', every: '1h', paused: 'yes' }, 'paused'],
  ])('refuses %j, naming %s', (body, field) => {
    expect(fieldOf(body)).toBe(field ?? '(none)');
  });

  it('reads durations in s, m, h and d', () => {
    expect([durationSeconds('30s', 'x'), durationSeconds('15m', 'x'), durationSeconds('2h', 'x'), durationSeconds('1d', 'x')]).toEqual([30, 900, 7200, 86400]);
  });
});
