import { checkScheduleDefinition } from '../../src/schedules/schedule-definition';
import { digestOf, withKeyColumn } from '../../src/schedules/lake-subjects';
import { fullBecause, LAKE_KEY_COLUMN, type LakeRunManifest, type LakeSubject } from '../../src/contracts/lake-export';
import { OperationOutcomeError } from '../../src/fhir/outcome-error';

const view = { resourceType: 'ViewDefinition', name: 'obs', resource: 'Observation', status: 'active', select: [{ column: [{ name: 'code', path: 'code.text' }] }] };
const sqlExport = (...extra: unknown[]) => ({ resourceType: 'Parameters', parameter: [{ name: 'subject', part: [{ name: 'subjectResource', resource: view }] }, ...extra] });

/** The field the refusal names, and its text. */
function refusal(body: unknown): { field?: string; text: string } {
  try {
    checkScheduleDefinition(body);
  } catch (err) {
    if (!(err instanceof OperationOutcomeError)) throw err;
    return { field: err.issues[0].expression?.[0], text: err.message };
  }
  throw new Error('accepted');
}

describe('lake schedules (sqlExport)', () => {
  it('reads sqlExport as a $sql-export kick-off: Parquet unless it says, destination lake/<id>, incremental', () => {
    const checked = checkScheduleDefinition({ id: 'obs', every: '1m', sqlExport: sqlExport(), fullEvery: 24, retention: '1d' });
    if (checked.kind !== 'lake') throw new Error('a lake schedule');
    expect(checked.viewRequest.format).toBe('parquet');
    expect(checked.definition).toMatchObject({ id: 'obs', destination: 'lake/obs', mode: 'incremental', fullEvery: 24, retention: '1d' });
    expect(checked.retentionMs).toBe(86_400_000);
    const ndjson = checkScheduleDefinition({ id: 'obs', every: '1m', sqlExport: sqlExport({ name: '_format', valueCode: 'ndjson' }), mode: 'full', destination: 'tables/a' });
    expect(ndjson.kind === 'lake' && ndjson.viewRequest.format).toBe('ndjson');
  });

  it.each([
    [{ sqlExport: sqlExport({ name: '_since', valueInstant: '2026-01-01T00:00:00Z' }) }, 'sqlExport._since', /set by the schedule/],
    [{ sqlExport: sqlExport({ name: 'clientTrackingId', valueString: 'x' }) }, 'sqlExport.clientTrackingId', /a schedule has runs/],
    [{ sqlExport: { resourceType: 'Parameters', parameter: [] } }, 'sqlExport.subject', /at least one view/],
    [{ sqlExport: sqlExport({ name: '_format', valueCode: 'xml' }) }, 'sqlExport._format', /not one of/],
    [{ sqlExport: sqlExport(), level: 'patient' }, 'level', /belongs to a schedule of \$export runs/],
    [{ sqlExport: sqlExport(), start: '2026-01-01T00:00:00Z' }, 'start', /first run/],
    [{ sqlExport: sqlExport({ name: 'group', valueReference: { reference: 'Group/g' } }) }, 'mode', /use mode full/],
    [{ sqlExport: sqlExport(), mode: 'full', fullEvery: 3 }, 'fullEvery', /applies to mode incremental/],
    [{ sqlExport: sqlExport(), fullEvery: 0 }, 'fullEvery', /whole number/],
    [{ sqlExport: sqlExport(), mode: 'sometimes' }, 'mode', /incremental or full/],
    [{ sqlExport: sqlExport(), destination: '../up' }, 'destination', /path segments/],
    [{ destination: 'lake/x' }, 'destination', /belongs to a schedule of view exports/],
  ].map(([fields, field, text]) => [field as string, Object.keys(fields as object).filter((k) => k !== 'sqlExport').join(', ') || 'sqlExport', fields as Record<string, unknown>, text as RegExp] as const))('refuses a bad %s (fields: %s), naming the field', (field, _given, fields, text) => {
    const found = refusal({ id: 'obs', every: '1h', ...fields });
    expect(found.field).toBe(field);
    expect(found.text).toMatch(text);
  });

  it('keys an incremental view by its own getResourceKey() column, or adds lake_resource_key first', () => {
    const own = { ...view, select: [{ column: [{ name: 'id', path: 'getResourceKey()' }] }] };
    expect(withKeyColumn(own)).toEqual({ definition: own, keyColumn: 'id' });
    // A key inside a forEach repeats per row of the iteration, not per resource: not the key column.
    const nested = { ...view, select: [{ forEach: 'code.coding', column: [{ name: 'id', path: 'getResourceKey()' }] }] };
    const keyed = withKeyColumn(nested);
    expect(keyed.keyColumn).toBe(LAKE_KEY_COLUMN);
    expect((keyed.definition.select as unknown[])[0]).toEqual({ column: [{ name: LAKE_KEY_COLUMN, path: 'getResourceKey()', type: 'string' }] });
    expect((keyed.definition.select as unknown[]).slice(1)).toEqual(nested.select);
  });

  it('runs a table full on its first run, after its view changed, every fullEvery runs, and always for mode full and SQL', () => {
    const subject: LakeSubject = { name: 'obs', mode: 'incremental', digest: digestOf(view) };
    const previous = { subjects: { obs: { digest: subject.digest } } } as unknown as LakeRunManifest;
    expect(fullBecause(subject, undefined, 3, undefined)).toBe('first');
    expect(fullBecause(subject, previous, 3, undefined)).toBeUndefined();
    expect(fullBecause(subject, previous, 4, 4)).toBe('fullEvery');
    expect(fullBecause(subject, previous, 5, 4)).toBeUndefined();
    expect(fullBecause({ ...subject, digest: digestOf({ ...view, name: 'other' }) }, previous, 3, undefined)).toBe('changed');
    expect(fullBecause({ ...subject, mode: 'full' }, previous, 3, undefined)).toBe('mode');
    // A save that changes only meta is no change.
    expect(digestOf({ ...view, meta: { versionId: '7' } })).toBe(subject.digest);
  });
});
