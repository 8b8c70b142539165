import { ADMIN_SCOPE, grantScopes, parseScope, Scopes } from '../../src/auth/scopes';

describe('SMART scopes', () => {
  it.each([
    ['system/Observation.read', 'Observation', ['r', 's']],
    ['system/*.read', '*', ['r', 's']],
    ['system/*.*', '*', ['c', 'r', 'u', 'd', 's']],
    ['system/Patient.write', 'Patient', ['c', 'u', 'd']],
    ['system/Observation.rs', 'Observation', ['r', 's']],
    ['system/*.cruds', '*', ['c', 'r', 'u', 'd', 's']],
    ['system/Condition.r', 'Condition', ['r']],
  ])('reads %s', (scope, type, permissions) => {
    const grant = parseScope(scope)!;
    expect(grant.type).toBe(type);
    expect([...grant.permissions].sort()).toEqual([...permissions].sort());
  });

  it.each(['patient/Observation.read', 'user/*.rs', 'system/Observation.sr', 'system/Observation.', 'system/observation.read', 'launch', 'system/Observation.rr'])(
    'grants nothing for %s',
    (scope) => expect(parseScope(scope)).toBeUndefined(),
  );

  it('answers per type and permission, and knows the admin scope', () => {
    const scopes = Scopes.parse('system/Observation.rs system/Patient.read launch');
    expect(scopes.canRead('Observation')).toBe(true);
    expect(scopes.canRead('Patient')).toBe(true);
    expect(scopes.canRead('Condition')).toBe(false);
    expect(scopes.allows('Patient', 'c')).toBe(false);
    expect(scopes.readsEverything).toBe(false);
    expect(scopes.admin).toBe(false);
    expect(Scopes.parse(`system/*.rs ${ADMIN_SCOPE}`).readsEverything).toBe(true);
    expect(Scopes.parse(ADMIN_SCOPE).admin).toBe(true);
  });

  it('grants the requested scopes an allowed scope covers', () => {
    const allowed = ['system/*.rs', 'system/Patient.cruds'];
    expect(grantScopes(['system/Observation.read', 'system/Observation.rs', 'system/Patient.write', 'system/Condition.c', ADMIN_SCOPE], allowed)).toEqual([
      'system/Observation.read',
      'system/Observation.rs',
      'system/Patient.write',
    ]);
    expect(grantScopes([ADMIN_SCOPE], [ADMIN_SCOPE])).toEqual([ADMIN_SCOPE]);
  });
});
