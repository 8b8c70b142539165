import type { Pool } from 'pg';
import { migrate } from '../../src/store/migrate';
import { migrations } from '../../src/store/migrations';
import { ResourceStore } from '../../src/store/resource-store';
import { InvalidResourceError } from '../../src/fhir/resource-validation';
import { migratedPool, uniqueTenant } from '../support/database';

describe('ResourceStore (PostgreSQL)', () => {
  let pool: Pool;
  let store: ResourceStore;

  beforeAll(async () => {
    pool = await migratedPool();
  });
  beforeEach(() => {
    store = new ResourceStore(pool, uniqueTenant('store'));
  });
  afterAll(() => pool.end());

  describe('migrations', () => {
    it('are recorded once, and re-running (also concurrently) applies nothing', async () => {
      const again = await Promise.all([migrate(pool), migrate(pool), migrate(pool)]);
      expect(again).toEqual([[], [], []]);
      const { rows } = await pool.query('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
    });
  });

  it('creates version 1 with meta set by the store, and reads it back', async () => {
    const created = await store.put({ resourceType: 'Patient', id: 'p1', meta: { versionId: '99', source: 'x' }, active: true });
    expect(created).toMatchObject({ outcome: 'created', versionId: '1' });
    const read = await store.read('Patient', 'p1');
    expect(read).toMatchObject({ versionId: '1', deleted: false, lastUpdated: created.lastUpdated });
    const body = JSON.parse(read!.body!);
    expect(body.meta).toEqual({ versionId: '1', lastUpdated: created.lastUpdated, source: 'x' });
    expect(body.active).toBe(true);
  });

  it('assigns an id when a new resource has none', async () => {
    const created = await store.put({ resourceType: 'Observation', status: 'final' });
    expect(created.id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await store.read('Observation', created.id))?.versionId).toBe('1');
  });

  it('makes a new version only when the content changed (key order and meta do not count)', async () => {
    await store.put({ resourceType: 'Patient', id: 'p1', active: true, gender: 'female' });
    const same = await store.put({ resourceType: 'Patient', id: 'p1', gender: 'female', active: true, meta: { versionId: '7' } });
    expect(same).toMatchObject({ outcome: 'unchanged', versionId: '1' });
    const changed = await store.put({ resourceType: 'Patient', id: 'p1', active: false, gender: 'female' });
    expect(changed).toMatchObject({ outcome: 'updated', versionId: '2' });
    const { rows } = await pool.query(
      'SELECT version_id, superseded_at IS NULL AS current FROM resource_versions WHERE tenant = $1 ORDER BY version_id',
      [store.tenant],
    );
    expect(rows).toEqual([
      { version_id: 1, current: false },
      { version_id: 2, current: true },
    ]);
  });

  it('deletes by writing a tombstone version, and re-creates after it', async () => {
    await store.put({ resourceType: 'Condition', id: 'c1', subject: { reference: 'Patient/p1' } });
    expect(await store.delete('Condition', 'c1')).toMatchObject({ outcome: 'deleted', versionId: '2' });
    expect(await store.read('Condition', 'c1')).toMatchObject({ deleted: true, versionId: '2', body: null });
    expect(await store.delete('Condition', 'c1')).toMatchObject({ outcome: 'not-found' });
    expect(await store.delete('Condition', 'never')).toMatchObject({ outcome: 'not-found' });
    expect(await store.put({ resourceType: 'Condition', id: 'c1' })).toMatchObject({ outcome: 'created', versionId: '3' });
  });

  it('records compartment rows for every patient a version references', async () => {
    const write = await store.write([
      { op: 'put', resource: { resourceType: 'Patient', id: 'a' } },
      { op: 'put', resource: { resourceType: 'Observation', id: 'o1', subject: { reference: 'Patient/a' }, performer: [{ reference: 'Patient/b' }] } },
      { op: 'put', resource: { resourceType: 'Encounter', id: 'e1', subject: { reference: 'Patient/a' } } },
      { op: 'put', resource: { resourceType: 'Practitioner', id: 'dr' } },
    ]);
    expect(write.map((w) => w.outcome)).toEqual(['created', 'created', 'created', 'created']);
    const { rows } = await pool.query(
      'SELECT patient_id, resource_type, resource_id FROM compartment_memberships WHERE tenant = $1 ORDER BY 1, 2, 3',
      [store.tenant],
    );
    expect(rows).toEqual([
      { patient_id: 'a', resource_type: 'Encounter', resource_id: 'e1' },
      { patient_id: 'a', resource_type: 'Observation', resource_id: 'o1' },
      { patient_id: 'a', resource_type: 'Patient', resource_id: 'a' },
      { patient_id: 'b', resource_type: 'Observation', resource_id: 'o1' },
    ]);
  });

  it('records Group members with period and inactive', async () => {
    await store.put({
      resourceType: 'Group',
      id: 'g1',
      type: 'person',
      actual: true,
      member: [
        { entity: { reference: 'Patient/a' }, period: { start: '2024-01-01' } },
        { entity: { reference: 'Patient/b' }, inactive: true },
        { entity: { display: 'no reference' } },
      ],
    });
    const { rows } = await pool.query(
      'SELECT member_type, member_id, period_start, inactive FROM group_memberships WHERE tenant = $1 ORDER BY member_id',
      [store.tenant],
    );
    expect(rows).toEqual([
      { member_type: 'Patient', member_id: 'a', period_start: new Date('2024-01-01T00:00:00Z'), inactive: false },
      { member_type: 'Patient', member_id: 'b', period_start: null, inactive: true },
    ]);
  });

  it('rolls a transaction back entirely when one write fails', async () => {
    await expect(
      store.transaction(async (tx) => {
        await tx.write([{ op: 'put', resource: { resourceType: 'Patient', id: 'rolled-back' } }]);
        await tx.write([{ op: 'put', resource: { resourceType: 'NotAType' } as never }]);
      }),
    ).rejects.toThrow(InvalidResourceError);
    expect(await store.read('Patient', 'rolled-back')).toBeUndefined();
  });

  it('handles the same resource twice in one batch as two versions', async () => {
    const results = await store.write([
      { op: 'put', resource: { resourceType: 'Patient', id: 'twice', active: true } },
      { op: 'put', resource: { resourceType: 'Patient', id: 'twice', active: false } },
    ]);
    expect(results.map((r) => [r.outcome, r.versionId])).toEqual([
      ['created', '1'],
      ['updated', '2'],
    ]);
  });

  it.each([
    ['not an object', [1, 2]],
    ['no resourceType', { id: 'x' }],
    ['an unknown resourceType', { resourceType: 'Spaceship' }],
    ['a bad id', { resourceType: 'Patient', id: 'has spaces' }],
    ['an over-long id', { resourceType: 'Patient', id: 'x'.repeat(65) }],
  ])('refuses %s with a clear error', async (_what, resource) => {
    await expect(store.put(resource)).rejects.toThrow(InvalidResourceError);
  });

  it('gives snapshot times after every committed write and before every later one', async () => {
    const before = await store.put({ resourceType: 'Patient', id: 'early' });
    const t = await store.snapshotTime();
    const after = await store.put({ resourceType: 'Patient', id: 'late' });
    expect(Date.parse(before.lastUpdated!)).toBeLessThanOrEqual(Date.parse(t));
    expect(Date.parse(after.lastUpdated!)).toBeGreaterThan(Date.parse(t));
  });
});
